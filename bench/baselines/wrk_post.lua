-- Unique single-transaction POSTs: each wrk thread numbers its own requests.
-- Used by bench/http_api.py: wrk -tN ... -s wrk_post.lua URL -- RUN_ID REQUESTS_PER_THREAD N MARKER_FILE
-- A thread that has its answers appends a line to MARKER_FILE and stops; wrk itself runs for its
-- whole duration, so the script interrupts it once every thread has written its line.
-- Request i of the run (over all threads) has the same body as bench/http_api.py's body(run, i).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  run = args[1] or "run"
  limit = tonumber(args[2] or "0")
  nthreads = tonumber(args[3] or "1")
  marker = args[4]
  sent = 0
  done = 0
end
function request()
  sent = sent + 1
  local i = (sent - 1) * nthreads + tid
  local body = string.format('{"transaction_id":"%s-%d","user_id":"u%d","amount":%d.0,"merchant_id":"m%d","device_id":"d%d","currency":"USD"}',
    run, i, i % 5000, 10 + i % 97, i % 300, i % 7000)
  return wrk.format("POST", "/v1/transactions", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  done = done + 1
  if limit > 0 and done == limit then
    if marker then
      local file = io.open(marker, "a")
      file:write("done\n")
      file:close()
    end
    wrk.thread:stop()
  end
end
