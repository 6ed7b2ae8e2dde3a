// Mongoose's allocator (MG_ENABLE_CUSTOM_CALLOC): every mg_calloc and
// mg_free of mongoose.c and of the glue comes here.
//
// Small allocations (connections, timers, strings) come from malloc. I/O
// buffers (MG_IO_SIZE and up) get pages of their own, from mmap: with
// malloc, a 16 KiB buffer freed when a connection goes idle leaves a hole
// between the small objects of the connections around it, which malloc can
// neither give back to the system nor fill with anything small, so idle
// connections kept costing the buffers they no longer had. Here freeing a
// buffer returns its pages (past a few kept for the next connection, which
// spare the system calls when connections come and go).
//
// Each allocation starts with a 16-byte header saying which kind it is;
// the pointer handed out follows it (still 16-byte aligned).
//
// Sanitizer and fuzzing builds leave MG_ENABLE_CUSTOM_CALLOC off, so that
// AddressSanitizer watches the I/O buffers too (CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "mongoose.h"

#if MG_ENABLE_CUSTOM_CALLOC

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#define MGFFI_PAGE_BUFFERS 1
#endif

namespace {

struct alignas(16) Header {
  std::size_t pages;  // 0: from malloc; otherwise the mapping's length in pages
  std::size_t magic;
};
constexpr std::size_t kMagic = 0x6d67666669616c63ull;  // "mgffialc"
static_assert(sizeof(Header) == 16, "the header keeps 16-byte alignment");

#if MGFFI_PAGE_BUFFERS

constexpr std::size_t kPageBufferMin = 8192;  // smaller ones come from malloc
constexpr std::size_t kKeptBlocks = 64;       // of the most common size (one I/O buffer)

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t pages_for(std::size_t bytes) {
  return (bytes + page_size() - 1) / page_size();
}

// Mappings of one I/O buffer's size, given back by mg_free, for the next
// mg_calloc of that size. Shared by every manager of the process; a fixed
// array, so that nothing needs destroying at exit.
struct KeptBlocks {
  std::mutex lock;
  void *blocks[kKeptBlocks] = {};
  std::size_t count = 0;
  std::size_t pages = pages_for(MG_IO_SIZE + sizeof(Header));

  void *take() {
    std::lock_guard<std::mutex> guard(lock);
    return count == 0 ? nullptr : blocks[--count];
  }
  bool keep(void *b) {
    std::lock_guard<std::mutex> guard(lock);
    if (count == kKeptBlocks) return false;
    blocks[count++] = b;
    return true;
  }
};

KeptBlocks &kept() {
  static KeptBlocks k;
  return k;
}

void *map_pages(std::size_t total) {
  const std::size_t pages = pages_for(total);
  KeptBlocks &k = kept();
  if (pages == k.pages) {
    if (void *b = k.take()) {
      std::memset(b, 0, total);
      static_cast<Header *>(b)->pages = pages;
      return b;
    }
  }
  void *b = mmap(nullptr, pages * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (b == MAP_FAILED) return nullptr;
  static_cast<Header *>(b)->pages = pages;  // fresh pages are zero
  return b;
}

void unmap_pages(void *b, std::size_t pages) {
  KeptBlocks &k = kept();
  if (pages == k.pages && k.keep(b)) return;
  munmap(b, pages * page_size());
}

#endif

}  // namespace

extern "C" void *mg_calloc(size_t count, size_t size) {
  if (size != 0 && count > (SIZE_MAX - sizeof(Header)) / size) return nullptr;
  const std::size_t total = count * size + sizeof(Header);
  void *b = nullptr;
#if MGFFI_PAGE_BUFFERS
  if (total >= kPageBufferMin) {
    b = map_pages(total);
  } else
#endif
  {
    b = std::calloc(1, total);
    if (b != nullptr) static_cast<Header *>(b)->pages = 0;
  }
  if (b == nullptr) return nullptr;
  static_cast<Header *>(b)->magic = kMagic;
  return static_cast<Header *>(b) + 1;
}

extern "C" void mg_free(void *ptr) {
  if (ptr == nullptr) return;
  Header *h = static_cast<Header *>(ptr) - 1;
  if (h->magic != kMagic) std::abort();  // not from mg_calloc: memory is corrupt
  h->magic = 0;
#if MGFFI_PAGE_BUFFERS
  if (h->pages != 0) {
    unmap_pages(h, h->pages);
    return;
  }
#endif
  std::free(h);
}

#endif  // MG_ENABLE_CUSTOM_CALLOC
