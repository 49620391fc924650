/*
 * trip_booking.h: what the Saga example's driver shares between its files
 * — the trip's steps, the processes it talks to (env_t), and what the
 * services and the listener report (trip_state.c). trip_booking.c has the
 * scenarios and the story.
 */
#ifndef TRIP_BOOKING_H
#define TRIP_BOOKING_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"

#define N_LEGS 5
#define PIVOT 2 /* the payment */
#define CAR 3
#define LISTENER N_LEGS /* env.log's slot for the listener's log */
#define ADDR_MAX 128
/* Quick retries, for trellisd when started here and for every saga. */
#define RETRY_INTERVAL_MS 100
#define REQUEST_TIMEOUT_MS 2000
#define STR_(x) #x
#define STR(x) STR_(x)
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 20000

/* The saga's steps, in order; those after PIVOT have no compensation. */
typedef struct {
    const char *name;    /* trip-service --name */
    const char *service; /* trip.v1.<service> */
    const char *payload; /* see trip_service.c for the format */
} trip_leg_t;
extern const trip_leg_t LEGS[N_LEGS];

typedef struct {
    example_procs_t procs;           /* procs.h NULL: nothing started here */
    harness_server_t *tm_proc;       /* trellisd when started here, else NULL */
    char tm[ADDR_MAX];               /* trellisd, host:port */
    char svc[N_LEGS][ADDR_MAX];      /* the services, host:port */
    harness_server_t *listener_proc; /* trip-listener when started here */
    char listener[ADDR_MAX];         /* trip-listener, host:port */
    /* a service's log, and the listener's at LISTENER, when started here */
    char log[N_LEGS + 1][PATH_MAX];
    trellis_client_t *client;
} env_t;

/* What a service says it did for a trip (its State). */
typedef struct {
    int ok; /* State answered */
    int n_bookings;
    int n_booked;       /* Books that booked (not duplicates) */
    int n_cancels;      /* Cancel calls, whatever they did */
    char booking[256];  /* the last booking's text */
    char history[512];  /* "Book booked, Cancel cancelled" */
    char booked[32];    /* the number Book gave ("" none) */
    char cancelled[32]; /* the number Cancel was handed ("" none) */
} svc_state_t;

/* What the listener recorded for a trip (its State). */
typedef struct {
    int ok;       /* State answered */
    int n_events; /* events recorded for the gid */
    char branch[40];
    char status[16];   /* "succeeded", "failed" */
    int deliveries;    /* Notify calls seen, duplicates included */
    char reason[1100]; /* "" when it succeeded */
} listener_state_t;

/* The services' and the listener's own words on a trip (trip_state.c);
 * each prints what it read. */
svc_state_t trip_read_state(const env_t *env, int leg, const char *gid);
void trip_print_said(const env_t *env, const char *gid);
void trip_read_states(const env_t *env, const char *gid,
                      svc_state_t st[N_LEGS]);
listener_state_t trip_read_listener(const env_t *env, const char *gid);

#endif /* TRIP_BOOKING_H */
