// Growable byte storage that keeps its capacity across reuse, so steady-state
// event recording allocates nothing. Unlike std::vector<char>, growing does
// not zero-fill, and appends return offsets (stable across growth).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

namespace mgffi {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer &) = delete;
  ByteBuffer &operator=(const ByteBuffer &) = delete;
  ByteBuffer(ByteBuffer &&) noexcept = default;
  ByteBuffer &operator=(ByteBuffer &&) noexcept = default;

  // Appends len bytes; returns the offset they start at, or npos on OOM.
  std::size_t append(const void *src, std::size_t len) {
    if (!reserve(size_ + len)) return npos;
    std::size_t offset = size_;
    if (len > 0) std::memcpy(data_.get() + size_, src, len);
    size_ += len;
    return offset;
  }

  // Makes room for at least n bytes in total, keeping the content.
  bool reserve(std::size_t n) {
    if (n <= capacity_) return true;
    std::size_t cap = capacity_ == 0 ? 256 : capacity_;
    while (cap < n) cap *= 2;
    std::unique_ptr<char[]> grown(new (std::nothrow) char[cap]);
    if (!grown) return false;
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = cap;
    return true;
  }

  void clear() { size_ = 0; }
  void truncate(std::size_t n) {
    if (n < size_) size_ = n;
  }
  // After writing into reserved room at data() + size(): the new size
  // (at most the capacity).
  void set_size(std::size_t n) { size_ = n <= capacity_ ? n : capacity_; }
  // Gives the memory back (clear() keeps it).
  void release() {
    data_.reset();
    size_ = capacity_ = 0;
  }
  char *data() { return data_.get(); }
  const char *data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace mgffi
