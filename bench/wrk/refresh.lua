-- Refresh-token rotation under wrk: each request spends one refresh token and the new one in
-- the answer goes back to the pool, so no token is sent twice (a server that rotates on every
-- use would see a replay and revoke the family). Environment: TOKENS, a file of refresh
-- tokens, one per line, at least one per connection; THREADS, wrk's -t; AUTH, the client's
-- Authorization header.
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
end

function init(args)
  pool = {}
  local threads = tonumber(os.getenv("THREADS"))
  local i = 0
  for line in io.lines(os.getenv("TOKENS")) do
    if line ~= "" then
      if i % threads == id - 1 then
        table.insert(pool, line)
      end
      i = i + 1
    end
  end
  request_headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = os.getenv("AUTH"),
  }
end

function request()
  -- An empty pool sends no token: the error is counted, never hidden.
  local token = table.remove(pool) or ""
  return wrk.format("POST", nil, request_headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local next = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if next then
    table.insert(pool, next)
  end
end
