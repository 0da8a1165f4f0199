-- Portcullis forward auth for HAProxy: asks portcullis-verify's /api/authz/forward-auth before each
-- request, as Traefik and Caddy do. Our own ~60 lines; needs HAProxy 2.5 or later built with Lua
-- (Debian 12's haproxy 2.6: `haproxy -vv | grep -i lua`) for core.httpclient and txn:reply.
--
-- Load it with `lua-load /etc/haproxy/portcullis.lua` and call it from a frontend:
--   http-request lua.portcullis_auth http://127.0.0.1:9091/api/authz/forward-auth
-- On a 2xx answer the request goes on with Remote-User, Remote-Groups, Remote-Name and Remote-Email
-- set from the answer (empty when anonymous); otherwise Portcullis's answer (302 to the portal, 401
-- with its challenge, 403) is sent to the client. If Portcullis cannot be asked: 503, never a pass.

local IDENTITY = { "Remote-User", "Remote-Groups", "Remote-Name", "Remote-Email" }
-- Request headers Portcullis needs to decide: credentials, and what kind of client is asking.
local PASS = { "cookie", "authorization", "accept", "x-requested-with", "user-agent" }
-- Answer headers a refusal carries to the client.
local REPLY = { "location", "www-authenticate", "set-cookie", "content-type" }

-- HAProxy's header tables are indexed from 0.
local function values(t)
  local out = {}
  if t == nil then return out end
  local i = 0
  while t[i] ~= nil do
    out[#out + 1] = t[i]
    i = i + 1
  end
  return out
end

core.register_action("portcullis_auth", { "http-req" }, function(txn, endpoint)
  -- The client's own identity headers never go on, in either spelling (Remote_User reaches CGI,
  -- WSGI and PHP applications as REMOTE_USER too).
  for _, name in ipairs(IDENTITY) do
    txn.http:req_del_header(name)
    txn.http:req_del_header((name:gsub("-", "_")))
  end

  local request = txn.http:req_get_headers()
  local tls = txn.f:ssl_fc()
  local headers = {
    ["X-Forwarded-Proto"] = { (tls == true or tls == 1) and "https" or "http" },
    ["X-Forwarded-Host"] = { values(request["host"])[1] or "" },
    ["X-Forwarded-Uri"] = { txn.f:pathq() or "/" },
    ["X-Forwarded-Method"] = { txn.f:method() },
    ["X-Forwarded-For"] = { txn.f:src() },
  }
  for _, name in ipairs(PASS) do
    local v = values(request[name])
    if #v > 0 then headers[name] = v end
  end

  local ok, response = pcall(function()
    return core.httpclient():get({ url = endpoint, headers = headers, timeout = 5000 })
  end)
  if not ok or type(response) ~= "table" or (response.status or 0) == 0 then
    core.Warning("portcullis: no answer from " .. endpoint .. ": " .. tostring(response))
    local reply = txn:reply()
    reply:set_status(503)
    reply:add_header("content-type", "text/plain; charset=utf-8")
    reply:set_body("503 Service Unavailable\n")
    txn:done(reply)
    return
  end

  if response.status >= 200 and response.status < 300 then
    for _, name in ipairs(IDENTITY) do
      txn.http:req_set_header(name, values(response.headers[name:lower()])[1] or "")
    end
    return
  end

  local reply = txn:reply()
  reply:set_status(response.status)
  for _, name in ipairs(REPLY) do
    for _, v in ipairs(values(response.headers[name])) do
      reply:add_header(name, v)
    end
  end
  reply:set_body(response.body or "")
  txn:done(reply)
end, 1)
