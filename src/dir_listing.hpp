// The HTML page of a directory listing (serve_dir's listing option).
#pragma once

#include <string>
#include <string_view>

namespace mgffi {

// Lists directory dir_path into *html: "Index of <shown>" and one link per
// entry, sorted by name, sub-directories with a trailing '/', with size
// and modification time; names starting with '.' only with show_dot.
// Names are HTML-escaped and links percent-encoded. False when the
// directory cannot be read (errno set).
bool build_listing(const std::string &dir_path, std::string_view shown, bool show_dot, bool at_root,
                   std::string *html);

}  // namespace mgffi
