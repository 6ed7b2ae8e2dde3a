// The size and field offsets of every struct in the C ABI, as compiled, so
// that tests can check the Lua cdefs against the library byte for byte. The
// field list is generated from include/mongoose_ffi.h at build time
// (cmake/gen_layout.cmake): the header is its only source.
#include <cstddef>

#include "mongoose_ffi.h"

#define MGFFI_STRUCT(T) {#T, nullptr, 0, sizeof(T)},
#define MGFFI_FIELD(T, F) {#T, #F, offsetof(T, F), sizeof(((T *)nullptr)->F)},

namespace {

const mgffi_layout_entry kLayout[] = {
#include "mgffi_layout.inc"
};

}  // namespace

extern "C" const mgffi_layout_entry *mgffi_layout(size_t *count) {
  if (count != nullptr) *count = sizeof(kLayout) / sizeof(kLayout[0]);
  return kLayout;
}
