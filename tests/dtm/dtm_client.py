#!/usr/bin/env python3
"""An independent client of DTM's gRPC service (dtmgimp.Dtm), for the tests
of trellisd's DTM service (tests/integration/test_dtm.c, test_dtm_xa.c and
test_dtm_workflow.c run it).

It is built on nothing of Trellis: Python's grpcio and the stubs that
grpc_tools.protoc generates from proto/dtm/dtmgimp.proto and wf.proto at
build time (--stubs names their directory). Each command sends what DTM's
SDKs send for one step of an application — the request fields filled as
DTM's Go SDK fills them (client/dtmgrpc: the whole TransBase on every call, Steps as a
JSON array of {"action", "compensate"} objects, one BinPayloads entry per
step, "null" Steps when there are none, TCC branch ids 01, 02, ... and the
try called by the initiator itself with dtm-* metadata) — and checks the
gRPC result against --expect (a status code name, default OK) and --words
(text the status details must contain). Exit 0 when the result is the one
expected (any, with --expect ANY: a run whose own answer depends on when a
crash came), 1 otherwise (printed), 2 on a usage error.

Commands (STEP arguments use '|' between fields, since targets hold ':'
and '/' and trellis-testpart's scripts hold ',', ';' and '='):

  saga GID STEP...            Submit a saga; STEP = ACTION|COMPENSATE|PAYLOAD
  msg-prepare GID QUERY STEP...   Prepare a message; STEP = ACTION|PAYLOAD
  msg-submit GID QUERY STEP...    Submit it (the SDK sends the whole message)
  abort GID TYPE [REASON]     Abort a transaction of TransType TYPE
  tcc GID PART PAYLOAD...     a TCC transaction as TccGlobalTransaction runs
                              it: Prepare; per PAYLOAD a branch (01, 02, ...)
                              registered with confirm/cancel at PART's
                              trellis.test.Part methods, then its Try called
                              here; Submit when every try succeeded, else
                              Abort with the try's error as RollbackReason
  xa GID SVC PAYLOAD...       an XA transaction as XaGlobalTransaction runs
                              it: Prepare; per PAYLOAD the branch (01, 02,
                              ...) called here at the target SVC with
                              dtm-op "action" and dtm-phase2_url SVC (the
                              participant registers itself); Submit when
                              every branch succeeded, else Abort
  workflow GID NAME PART STEP...
                              a workflow as DTM's workflow SDK runs it
                              (client/workflow: Execute): PrepareWorkflow
                              (CustomedData {"name", "data"}, QueryPrepared
                              --callback), the recorded progresses replayed,
                              per STEP (a script for trellis-testpart at
                              PART) a branch 01, 02, ... whose action,
                              called here, is recorded (RegisterBranch,
                              Data op/status); on a business failure the
                              earlier branches' rollbacks, called and
                              recorded; then Submit with ReqExtra status
                              succeed or failed
  serve                       serve DTM's workflow callback
                              (workflow.Workflow/Execute) on --listen
                              (port to --port-file), running the workflow
                              named by dtm-op again for dtm-gid; each
                              callback's metadata is appended to --journal
  subscribe TOPIC URL [REMARK] | unsubscribe TOPIC URL | delete-topic TOPIC
  newgid                      print a gid from NewGid
  raw METHOD JSON             send METHOD (Submit, Prepare, Abort,
                              RegisterBranch, Subscribe, ...) a request
                              built from JSON's fields, as is (bad input)

Options for transactions: --wait (WaitResult), --timeout-to-fail S,
--retry-interval S, --request-timeout S, --retry-limit N, --header K=V
(BranchHeaders), --custom JSON (CustomedData). A workflow's input (its
WorkflowData) is {"part": testpart's address, "steps": [STEP, ...]}, so the
service it is resumed on runs the same steps. A workflow process dies
(exit 3, nothing more sent) with --die-after-record N right after the Nth
action's progress is recorded, with --die-before-record N right after the
Nth action answered and before its progress is recorded: the crash of the
service in the middle of a workflow.
"""
import base64
import argparse
import json
import os
import signal
import sys
from concurrent import futures

import grpc


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stubs", required=True)
    p.add_argument("--tm", required=True, help="trellisd host:port")
    p.add_argument("--expect", default="OK")
    p.add_argument("--words", default="")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout-to-fail", type=int, default=0)
    p.add_argument("--retry-interval", type=int, default=0)
    p.add_argument("--request-timeout", type=int, default=0)
    p.add_argument("--retry-limit", type=int, default=0)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--custom", default="")
    p.add_argument("--callback", default="")
    p.add_argument("--die-after-record", type=int, default=0)
    p.add_argument("--die-before-record", type=int, default=0)
    p.add_argument("--listen", default="")
    p.add_argument("--port-file", default="")
    p.add_argument("--journal", default="")
    p.add_argument("command")
    p.add_argument("args", nargs="*")
    return p.parse_args(argv)


class Client:
    """What DTM's SDK keeps per transaction (its TransBase), and the calls
    it makes with it."""

    def __init__(self, opts, pb, pbg):
        self.opts = opts
        self.pb = pb
        self.channel = grpc.insecure_channel(opts.tm)
        self.stub = pbg.DtmStub(self.channel)

    def trans_options(self):
        headers = dict(h.split("=", 1) for h in self.opts.header)
        return self.pb.DtmTransOptions(
            WaitResult=self.opts.wait,
            TimeoutToFail=self.opts.timeout_to_fail,
            RetryInterval=self.opts.retry_interval,
            BranchHeaders=headers,
            RequestTimeout=self.opts.request_timeout,
            RetryLimit=self.opts.retry_limit,
        )

    def request(self, gid, trans_type, steps=None, payloads=(),
                query_prepared="", reason="", custom=None):
        # The Go SDK marshals a nil step list as "null".
        return self.pb.DtmRequest(
            Gid=gid,
            TransType=trans_type,
            TransOptions=self.trans_options(),
            CustomedData=self.opts.custom if custom is None else custom,
            BinPayloads=list(payloads),
            QueryPrepared=query_prepared,
            Steps=json.dumps(steps) if steps is not None else "null",
            RollbackReason=reason,
        )

    def call(self, method, req):
        getattr(self.stub, method)(req, timeout=30)


def split_steps(args, n_fields):
    steps, payloads = [], []
    for a in args:
        f = a.split("|")
        if len(f) != n_fields:
            raise SystemExit(f"step {a!r}: {n_fields} fields expected")
        keys = ["action", "compensate"][: n_fields - 1]
        steps.append(dict(zip(keys, f[:-1])))
        payloads.append(f[-1].encode())
    return steps, payloads


def run_tcc(c, gid, part, payloads):
    """TccGlobalTransaction: Prepare, then per branch RegisterBranch and the
    try (with dtm-* metadata, called here), then Submit or Abort."""
    c.call("Prepare", c.request(gid, "tcc"))
    method = "/trellis.test.Part/"
    failure = None
    for i, payload in enumerate(payloads, start=1):
        branch = "%02d" % i
        c.stub.RegisterBranch(c.pb.DtmBranchRequest(
            Gid=gid, TransType="tcc", BranchID=branch,
            BusiPayload=payload.encode(),
            Data={"confirm": part + method + "Confirm",
                  "cancel": part + method + "Cancel"}), timeout=30)
        md = [("dtm-gid", gid), ("dtm-trans_type", "tcc"),
              ("dtm-branch_id", branch), ("dtm-op", "try"),
              ("dtm-dtm", c.opts.tm)]
        with grpc.insecure_channel(part) as ch:
            try_call = ch.unary_unary(method + "Try")
            try:
                try_call(payload.encode(), metadata=md, timeout=30)
            except grpc.RpcError as e:
                failure = e
                break
    if failure is None:
        c.call("Submit", c.request(gid, "tcc"))
    else:
        c.call("Abort", c.request(gid, "tcc", reason=failure.details()))
        raise failure


def run_xa(c, gid, svc, payloads):
    """XaGlobalTransaction: Prepare, each branch's local transaction called
    here (the participant registers it), then Submit or Abort."""
    c.call("Prepare", c.request(gid, "xa"))
    host, method = svc.split("/", 1)
    failure = None
    with grpc.insecure_channel(host) as ch:
        branch_call = ch.unary_unary("/" + method)
        for i, payload in enumerate(payloads, start=1):
            md = [("dtm-gid", gid), ("dtm-trans_type", "xa"),
                  ("dtm-branch_id", "%02d" % i), ("dtm-op", "action"),
                  ("dtm-dtm", c.opts.tm), ("dtm-phase2_url", svc)]
            try:
                branch_call(payload.encode(), metadata=md, timeout=30)
            except grpc.RpcError as e:
                failure = e
                break
    if failure is None:
        c.call("Submit", c.request(gid, "xa"))
    else:
        c.call("Abort", c.request(gid, "xa", reason=failure.details()))
        raise failure


class WorkflowFailed(Exception):
    """The workflow ended failed (ErrFailure): read as ABORTED."""

    def code(self):
        return grpc.StatusCode.ABORTED

    def details(self):
        return str(self)


class Workflow:
    """One run of a workflow function, as DTM's workflow SDK does it
    (client/workflow: process, recordedDo, processPhase2, submit)."""

    def __init__(self, c, gid, name, data, callback):
        self.c, self.gid, self.name, self.data = c, gid, name, data
        self.callback = callback
        self.progresses = {}
        self.actions_done = 0
        # newWorkflow's CustomData: json.Marshal of {"name", "data"}, the
        # []byte in base64, keys sorted, no spaces.
        self.custom = json.dumps(
            {"name": name, "data": base64.b64encode(data).decode()},
            sort_keys=True, separators=(",", ":"))

    def request(self, extra=None):
        req = self.c.request(self.gid, "workflow", custom=self.custom,
                             query_prepared=self.callback)
        req.ReqExtra.update(extra or {})
        return req

    def run(self):
        reply = self.c.stub.PrepareWorkflow(self.request(), timeout=30)
        status = reply.Transaction.Status
        if status == "succeed":
            return
        if status == "failed":
            raise WorkflowFailed("workflow's rollback_reason: "
                                 + reply.Transaction.RollbackReason)
        for p in reply.Progresses:
            self.progresses[(p.BranchID, p.Op)] = (p.Status, p.BinData)
        spec = json.loads(self.data)
        rollbacks, failure = [], None
        for i, script in enumerate(spec["steps"], start=1):
            branch = "%02d" % i
            status, data = self.recorded_do(branch, "action", spec["part"],
                                            "Action", script)
            if status == "failed":
                failure = data.decode()
                break  # CompensateErrorBranch false: no rollback of it
            rollbacks.append((branch, script))
        if failure is not None:
            for branch, script in reversed(rollbacks):
                self.recorded_do(branch, "rollback", spec["part"],
                                 "Compensate", script)
        extra = {"status": "failed" if failure is not None else "succeed",
                 "rollback_reason": failure or ""}
        self.c.stub.Submit(self.request(extra), timeout=30)
        if failure is not None:
            raise WorkflowFailed(failure)

    def recorded_do(self, branch, op, part, method, script):
        """A recorded progress replays; otherwise the op is called (with
        the workflow's dtm-* metadata) and its result recorded before
        the function goes on. Only OK and ABORTED are results."""
        if (branch, op) in self.progresses:
            return self.progresses[(branch, op)]
        md = [("dtm-gid", self.gid), ("dtm-trans_type", "workflow"),
              ("dtm-branch_id", branch), ("dtm-op", op),
              ("dtm-dtm", self.c.opts.tm)]
        with grpc.insecure_channel(part) as ch:
            try:
                reply = ch.unary_unary("/trellis.test.Part/" + method)(
                    script.encode(), metadata=md, timeout=30)
                status, data = "succeed", reply
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.ABORTED:
                    raise
                status, data = "failed", (e.details() or "").encode()
        if op == "action":
            self.actions_done += 1
            self.die_if(self.c.opts.die_before_record)
        self.c.stub.RegisterBranch(self.c.pb.DtmBranchRequest(
            Gid=self.gid, TransType="workflow", BranchID=branch,
            BusiPayload=data, Data={"status": status, "op": op}),
            timeout=30)
        if op == "action":
            self.die_if(self.c.opts.die_after_record)
        return status, data

    def die_if(self, n):
        if n and self.actions_done == n:
            print(f"workflow {self.gid}: dying after action {n}", flush=True)
            os._exit(3)


def run_workflow(c, gid, name, part, scripts):
    data = json.dumps({"part": part, "steps": scripts}).encode()
    Workflow(c, gid, name, data, c.opts.callback).run()


def serve(c, wfpb):
    """DTM's workflow server (client/workflow/server.go): Execute runs
    the workflow dtm-op names for dtm-gid again, with WorkflowData.Data
    as its input; ErrFailure goes back as ABORTED."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port(c.opts.listen)
    callback = "127.0.0.1:%d/workflow.Workflow/Execute" % port

    def execute(wd, context):
        md = dict(context.invocation_metadata())
        with open(c.opts.journal, "a") as j:
            j.write("callback gid=%s trans_type=%s branch_id=%s op=%s "
                    "data_len=%d\n" % (md.get("dtm-gid"),
                                        md.get("dtm-trans_type"),
                                        md.get("dtm-branch_id"),
                                        md.get("dtm-op"), len(wd.Data)))
        try:
            Workflow(c, md.get("dtm-gid", ""), md.get("dtm-op", ""),
                     wd.Data, callback).run()
        except WorkflowFailed as e:
            context.abort(grpc.StatusCode.ABORTED, str(e))
        except grpc.RpcError as e:
            context.abort(grpc.StatusCode.UNKNOWN, e.details() or "")
        return wfpb.Empty()

    handler = grpc.method_handlers_generic_handler("workflow.Workflow", {
        "Execute": grpc.unary_unary_rpc_method_handler(
            execute, request_deserializer=wfpb.WorkflowData.FromString,
            response_serializer=wfpb.Empty.SerializeToString)})
    server.add_generic_rpc_handlers((handler,))
    server.start()
    with open(c.opts.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(c.opts.port_file + ".tmp", c.opts.port_file)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()


def run(c, o):
    cmd, a = o.command, o.args
    if cmd == "saga":
        steps, payloads = split_steps(a[1:], 3)
        c.call("Submit", c.request(a[0], "saga", steps, payloads))
    elif cmd in ("msg-prepare", "msg-submit"):
        steps, payloads = split_steps(a[2:], 2)
        method = "Prepare" if cmd == "msg-prepare" else "Submit"
        c.call(method, c.request(a[0], "msg", steps, payloads,
                                 query_prepared=a[1]))
    elif cmd == "abort":
        c.call("Abort", c.request(a[0], a[1],
                                  reason=a[2] if len(a) > 2 else ""))
    elif cmd == "tcc":
        run_tcc(c, a[0], a[1], a[2:])
    elif cmd == "xa":
        run_xa(c, a[0], a[1], a[2:])
    elif cmd == "workflow":
        run_workflow(c, a[0], a[1], a[2], a[3:])
    elif cmd in ("subscribe", "unsubscribe", "delete-topic"):
        method = {"subscribe": "Subscribe", "unsubscribe": "Unsubscribe",
                  "delete-topic": "DeleteTopic"}[cmd]
        fields = dict(zip(["Topic", "URL", "Remark"], a))
        c.call(method, c.pb.DtmTopicRequest(**fields))
    elif cmd == "newgid":
        print("gid", c.stub.NewGid(c.pb.Empty(), timeout=30).Gid)
    elif cmd == "raw":
        send_raw(c, a[0], json.loads(a[1]))
    else:
        raise SystemExit(f"unknown command {cmd}")


def send_raw(c, method, fields):
    kind = {"RegisterBranch": c.pb.DtmBranchRequest,
            "Subscribe": c.pb.DtmTopicRequest,
            "Unsubscribe": c.pb.DtmTopicRequest,
            "DeleteTopic": c.pb.DtmTopicRequest}.get(method, c.pb.DtmRequest)
    for k in ("BinPayloads",):
        if k in fields:
            fields[k] = [s.encode() for s in fields[k]]
    if "BusiPayload" in fields:
        fields["BusiPayload"] = fields["BusiPayload"].encode()
    if "TransOptions" in fields:
        fields["TransOptions"] = c.pb.DtmTransOptions(**fields["TransOptions"])
    c.call(method, kind(**fields))


def main(argv):
    o = parse_args(argv)
    sys.path.insert(0, o.stubs)
    from dtm import dtmgimp_pb2 as pb  # generated at build time
    from dtm import dtmgimp_pb2_grpc as pbg

    c = Client(o, pb, pbg)
    if o.command == "serve":
        from dtm import wf_pb2 as wfpb
        serve(c, wfpb)
        return 0
    code, details = "OK", ""
    try:
        run(c, o)
    except (grpc.RpcError, WorkflowFailed) as e:
        code, details = e.code().name, e.details() or ""
    print(f"{o.command} {' '.join(o.args[:1])}: {code} {details}")
    if o.expect != "ANY" and (code != o.expect or o.words not in details):
        print(f"expected {o.expect} with {o.words!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
