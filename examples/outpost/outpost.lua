-- Forward auth against portcullis-outpost (or authentik's outpost) for HAProxy: asks
-- /outpost.goauthentik.io/auth/traefik before each request, as Traefik's forwardAuth does. Our own
-- script; needs HAProxy 2.5 or later built with Lua (Debian 12's haproxy 2.6) for core.httpclient
-- and txn:reply.
--
-- Load it with `lua-load /etc/haproxy/outpost.lua` and call it from a frontend:
--   http-request lua.authentik_auth http://127.0.0.1:9000/outpost.goauthentik.io/auth/traefik
-- The outpost learns the original URL from X-Forwarded-Proto, X-Forwarded-Host and
-- X-Forwarded-Uri. On a 2xx answer the request goes on with the twelve X-authentik-* headers set
-- from the answer (client copies removed first, in both spellings); otherwise the outpost's answer
-- (302 to the identity provider with its Set-Cookie, 403, 500) goes to the client. If the outpost
-- cannot be asked: 503, never a pass.

local IDENTITY = {
  "X-authentik-username", "X-authentik-groups", "X-authentik-entitlements", "X-authentik-email",
  "X-authentik-name", "X-authentik-uid", "X-authentik-jwt", "X-authentik-meta-jwks",
  "X-authentik-meta-outpost", "X-authentik-meta-provider", "X-authentik-meta-app",
  "X-authentik-meta-version",
}
-- Request headers the outpost decides with: the session cookie, header authentication, and the
-- User-Agent it echoes.
local PASS = { "cookie", "authorization", "user-agent", "accept" }
-- Answer headers a refusal carries to the client.
local REPLY = { "location", "set-cookie", "content-type", "www-authenticate" }

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

core.register_action("authentik_auth", { "http-req" }, function(txn, endpoint)
  -- The client's own identity headers never go on, in either spelling (X_authentik_username
  -- reaches CGI, WSGI and PHP applications as HTTP_X_AUTHENTIK_USERNAME too).
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
    core.Warning("outpost: no answer from " .. endpoint .. ": " .. tostring(response))
    local reply = txn:reply()
    reply:set_status(503)
    reply:add_header("content-type", "text/plain; charset=utf-8")
    reply:set_body("503 Service Unavailable\n")
    txn:done(reply)
    return
  end

  if response.status >= 200 and response.status < 300 then
    for _, name in ipairs(IDENTITY) do
      local v = values(response.headers[name:lower()])
      if #v > 0 then txn.http:req_set_header(name, v[1]) end
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
