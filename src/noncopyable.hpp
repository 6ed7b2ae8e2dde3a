// The base of the glue's owners of a resource (a descriptor, a zlib
// stream, the manager and its connections): neither copied nor moved.
#pragma once

namespace mgffi {

struct NonCopyable {
  NonCopyable() = default;
  NonCopyable(const NonCopyable &) = delete;
  NonCopyable &operator=(const NonCopyable &) = delete;
};

}  // namespace mgffi
