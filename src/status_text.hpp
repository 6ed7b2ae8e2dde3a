// Reason phrases for HTTP status codes (RFC 9110 and common extensions).
#pragma once

namespace mgffi {

// Returns the reason phrase for status, or "Unknown" for codes without one.
const char *status_text(int status);

}  // namespace mgffi
