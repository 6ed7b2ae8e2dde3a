// Recycled objects of the manager (connection states, request stores,
// WebSocket states): taken from the back of a pool, or made when it is
// empty, so that steady traffic allocates nothing.
#pragma once

#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace mgffi {

// The last object of pool, or a new one; nullptr when out of memory.
template <typename T>
std::unique_ptr<T> take_from(std::vector<std::unique_ptr<T>> &pool) {
  if (pool.empty()) return std::unique_ptr<T>(new (std::nothrow) T());
  std::unique_ptr<T> p = std::move(pool.back());
  pool.pop_back();
  return p;
}

}  // namespace mgffi
