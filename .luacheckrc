-- luacheck configuration (Debian package lua-check).
std = "luajit"
max_line_length = 120
codes = true
-- Methods of the public API keep their documented parameters even where an
-- implementation does not use all of them.
unused_args = false
files["tests/lua"] = { globals = {} }
max_string_line_length = false
