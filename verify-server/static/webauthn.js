// Portcullis portal: the WebAuthn ceremonies, the only part of the portal that needs JavaScript.
// The server sends options with base64url binary fields (docs/reference/second-factor.md §2.3);
// this turns them into ArrayBuffers for navigator.credentials and the answers back into JSON.
"use strict";
(function () {
  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
  }
  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      user: Object.assign({}, o.user, { id: toBytes(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }
  function requestOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      allowCredentials: descriptors(o.allowCredentials),
    });
  }
  function common(credential) {
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }
  function registrationJSON(credential) {
    var r = credential.response, out = common(credential);
    out.response = {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    };
    return out;
  }
  function assertionJSON(credential) {
    var r = credential.response, out = common(credential);
    out.response = {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    };
    return out;
  }
  function call(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok || j.status !== "OK") throw new Error(j.message || "The request failed (" + r.status + ").");
        return j;
      });
    });
  }
  function fail(error) {
    var box = document.getElementById("webauthn-error");
    if (!box) return;
    box.hidden = false;
    box.textContent = error && error.message ? error.message : String(error);
    box.focus();
  }
  function field(name) {
    var el = document.querySelector("input[name=" + name + "]");
    return el ? el.value : "";
  }
  function go(answer, fallback) {
    var to = answer && answer.data && answer.data.redirect;
    window.location.assign(to || fallback);
  }
  function passkeyLogin() {
    var remember = document.getElementById("remember");
    call("GET", "/api/firstfactor/passkey")
      .then(function (j) { return navigator.credentials.get({ publicKey: requestOptions(j.data.publicKey) }); })
      .then(function (credential) {
        var body = { response: assertionJSON(credential), keepMeLoggedIn: !!(remember && remember.checked) };
        if (field("rd")) body.targetURL = field("rd");
        if (field("rm")) body.requestMethod = field("rm");
        if (field("flow_id")) { body.flow = "openid_connect"; body.flowID = field("flow_id"); }
        return call("POST", "/api/firstfactor/passkey", body);
      })
      .then(function (answer) { go(answer, "/" + window.location.search); }, fail);
  }
  function securityKeySignIn() {
    call("GET", "/api/secondfactor/webauthn")
      .then(function (j) { return navigator.credentials.get({ publicKey: requestOptions(j.data.publicKey) }); })
      .then(function (credential) {
        var body = { response: assertionJSON(credential) };
        if (field("rd")) body.targetURL = field("rd");
        return call("POST", "/api/secondfactor/webauthn", body);
      })
      .then(function (answer) { go(answer, "/" + window.location.search); }, fail);
  }
  function register(event) {
    event.preventDefault();
    var description = document.getElementById("webauthn-description").value;
    call("PUT", "/api/secondfactor/webauthn/credential/register", { description: description })
      .then(function (j) { return navigator.credentials.create({ publicKey: creationOptions(j.data.publicKey) }); })
      .then(function (credential) {
        return call("POST", "/api/secondfactor/webauthn/credential/register", registrationJSON(credential));
      })
      .then(function () { window.location.assign("/settings?registered=webauthn"); }, fail);
  }
  function on(id, event, handler) {
    var el = document.getElementById(id);
    if (!el) return;
    if (!window.PublicKeyCredential) { el.disabled = true; fail(new Error("This browser does not support security keys.")); return; }
    el.addEventListener(event, handler);
  }
  on("passkey-sign-in", "click", passkeyLogin);
  on("webauthn-sign-in", "click", securityKeySignIn);
  on("webauthn-register", "submit", register);
})();
