-- mongoose.net_wait: the readers of raw TCP connections (mongoose.net)
-- that have no callback: conn:read(n) and conn:read_until(delim) in a task
-- wait for their frame and return it. They queue with the callback readers,
-- in order; run_readers (mongoose.net) wakes them.
local coro = require("mongoose.coro")

local str_find, str_sub, tbl_remove = string.find, string.sub, table.remove

local _M = {}

-- A reader without a callback, in a task: takes its frame at once when it
-- is first in line and the buffer holds it, else waits for it. Returns
-- the frame, or nil and "closed" (or "timeout").
function _M.wait_reader(self, reader, task)
  local readers = self.readers
  local buf = self.buffer
  -- (While run_readers serves, self.buffer is stale: the reader queues.)
  if buf and not self.serving and not (readers and readers[1]) then
    if reader.count then
      if #buf >= reader.count then
        local frame = str_sub(buf, 1, reader.count)
        self.buffer = #buf > reader.count and str_sub(buf, reader.count + 1) or nil
        return frame
      end
    else
      local s, e = str_find(buf, reader.delimiter, 1, true)
      if s then
        self.buffer = e < #buf and str_sub(buf, e + 1) or nil
        return str_sub(buf, 1, reader.keep and e or s - 1)
      end
    end
  end
  if self.closed then
    return nil, "closed"
  end
  reader.task = task
  self.readers = readers or {}
  self.readers[#self.readers + 1] = reader
  return coro.wait(task, self, reader.timeout)
end

-- A reader in a task gave up (timeout, cancelled): it leaves the line.
function _M.abort_wait(self, task, why)
  local readers = self.readers
  if readers then
    for i = #readers, 1, -1 do
      if readers[i].task == task then
        tbl_remove(readers, i)
      end
    end
  end
  return nil, why
end

return _M
