// The Content-Type of a served file, from its extension: a built-in table
// (what browsers and bundlers produce today: wasm, mjs, webp, avif, woff2,
// json, map...) under overrides given as "ext=type,ext2=type2". Pure: no
// I/O, no allocation.
#pragma once

#include <string_view>

namespace mgffi {

// The extension of the last segment of path, without the dot ("gz" for
// "a/b.tar.gz"; "" for "a/b", "a.d/b" or a dotfile like ".env").
std::string_view extension_of(std::string_view path);

// The type of extension ext (case-insensitive): from overrides
// ("ext=type,...", spaces around items ignored) first, then the built-in
// table; "application/octet-stream" when neither knows it.
std::string_view mime_type_for(std::string_view ext, std::string_view overrides);

// Whether overrides is a well-formed "ext=type,..." list (each ext and
// type non-empty, no CR, LF or NUL). Empty is well-formed.
bool valid_mime_overrides(std::string_view overrides);

}  // namespace mgffi
