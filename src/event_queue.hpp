// The events one poll produced, with the bytes they refer to.
//
// Payload bytes are appended to an arena while Mongoose runs; because the
// arena may grow (and move), events record offsets and get their pointers in
// finalize(), once the poll is over. Everything is reset, not freed, between
// polls: in steady state recording an event allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "byte_buffer.hpp"
#include "http_store.hpp"
#include "mongoose_ffi.h"

namespace mgffi {

class EventQueue {
 public:
  EventQueue() {
    events_.reserve(256);
    offsets_.reserve(256);
  }

  // Appends an event; returns it for the caller to fill, or nullptr on OOM.
  mgffi_event *push(int type, std::uint64_t conn_id);

  // Drops the last pushed event.
  void pop() {
    if (!events_.empty()) {
      events_.pop_back();
      offsets_.pop_back();
    }
  }

  // Attaches a copy of bytes as the last pushed event's data.
  bool attach_data(const void *bytes, std::size_t len);
  // Appends bytes to the data of event index, when its data is the last in
  // the arena (false otherwise, or on OOM).
  bool extend_last_data(std::size_t index, const void *bytes, std::size_t len);
  void set_value(std::size_t index, std::int64_t value) { events_[index].value = value; }

  // A message store valid until clear(), for responses on client
  // connections (server requests live in their connection's state).
  HttpStore *borrow_http_store();

  // Turns recorded offsets into pointers; call once recording is over.
  void finalize();
  void clear();

  const mgffi_event *data() const { return events_.data(); }
  std::size_t size() const { return events_.size(); }
  std::size_t bytes() const { return arena_.size(); }

 private:
  static constexpr std::size_t kNoData = static_cast<std::size_t>(-1);
  std::vector<mgffi_event> events_;
  std::vector<std::size_t> offsets_;  // arena offset of each event's data
  ByteBuffer arena_;
  std::vector<std::unique_ptr<HttpStore>> http_stores_;
  std::size_t http_stores_used_ = 0;
};

}  // namespace mgffi
