#include "event_queue.hpp"

#include <new>

namespace mgffi {

mgffi_event *EventQueue::push(int type, std::uint64_t conn_id) {
  try {
    events_.emplace_back();
    offsets_.push_back(kNoData);
  } catch (const std::bad_alloc &) {
    if (events_.size() > offsets_.size()) events_.pop_back();
    return nullptr;
  }
  mgffi_event &ev = events_.back();
  ev = mgffi_event{};
  ev.type = type;
  ev.conn_id = conn_id;
  return &ev;
}

bool EventQueue::attach_data(const void *bytes, std::size_t len) {
  if (events_.empty()) return false;
  std::size_t offset = arena_.append(bytes, len);
  if (offset == ByteBuffer::npos) return false;
  offsets_.back() = offset;
  events_.back().data.len = len;
  return true;
}

bool EventQueue::extend_last_data(std::size_t index, const void *bytes, std::size_t len) {
  if (index >= events_.size() || offsets_[index] == kNoData) return false;
  if (offsets_[index] + events_[index].data.len != arena_.size()) return false;
  if (arena_.append(bytes, len) == ByteBuffer::npos) return false;
  events_[index].data.len += len;
  return true;
}

HttpStore *EventQueue::borrow_http_store() {
  if (http_stores_used_ == http_stores_.size()) {
    std::unique_ptr<HttpStore> store(new (std::nothrow) HttpStore());
    if (!store) return nullptr;
    try {
      http_stores_.push_back(std::move(store));
    } catch (const std::bad_alloc &) {
      return nullptr;
    }
  }
  return http_stores_[http_stores_used_++].get();
}

void EventQueue::finalize() {
  for (std::size_t i = 0; i < events_.size(); i++) {
    if (offsets_[i] != kNoData) events_[i].data.ptr = arena_.data() + offsets_[i];
  }
}

void EventQueue::clear() {
  events_.clear();
  offsets_.clear();
  arena_.clear();
  http_stores_used_ = 0;
}

}  // namespace mgffi
