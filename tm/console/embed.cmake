# Writes OUT, a C file holding the console's static files of DIR
# (index.html, console.js, console.css) as byte arrays: the table
# tm_console.c serves (tm_console_assets.h). Run at build time by
# tm/CMakeLists.txt whenever one of them changes:
#   cmake -DOUT=FILE.c -DDIR=tm/console -P embed.cmake
set(files index.html console.js console.css)
set(type_html "text/html; charset=utf-8")
set(type_js "text/javascript; charset=utf-8")
set(type_css "text/css; charset=utf-8")

set(body "/* Generated from tm/console/ by tm/console/embed.cmake: do not edit. */\n")
string(APPEND body "#include \"tm_console_assets.h\"\n\n")
set(table "")
set(i 0)
foreach(name IN LISTS files)
  string(REGEX REPLACE ".*\\." "" ext "${name}")
  file(READ "${DIR}/${name}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR size "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND body "static const unsigned char asset_${i}[] = {${bytes}0x00};\n")
  string(APPEND table "    {\"/${name}\", \"${type_${ext}}\", asset_${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "\nconst tm_console_asset_t tm_console_assets[] = {\n${table}};\n")
string(APPEND body "const size_t tm_console_n_assets = ${i};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
