/*! flask-smscode front-end helper: binds a phone field, a "get code" button and a code
 * field to POST /sms/send and POST /sms/verify. No dependencies, no inline script or style
 * needed (works under a strict Content-Security-Policy), ES2017 at most (old WeChat and iOS
 * browsers). Usage, with the elements found by data-attributes:
 *
 *   <form method="post" action="/login" data-smscode data-smscode-purpose="login">
 *     <input data-smscode-phone type="tel"> <button type="button" data-smscode-send>获取验证码</button>
 *     <input data-smscode-code inputmode="numeric"> <input type="hidden" name="token" data-smscode-token>
 *     <p data-smscode-message></p> <button>登录</button>
 *   </form>
 *   <script src="{{ smscode_script_url() }}"></script>
 *
 * Submitting the form verifies the code, puts the verified-phone token in the hidden field
 * and submits the form. Or: SmsCode.bind(element, {onVerified: function (result) {...}}).
 * Messages are the server's own (language from <html lang>, sent as Accept-Language).
 * The code field gets autocomplete="one-time-code"; where the browser has WebOTP, an SMS
 * ending in "@<host> #<code>" fills it and submits (opt out: data-smscode-webotp="off").
 */
(function (window, document) {
  "use strict";

  var VERSION = "0.1.0";
  var STORAGE_PREFIX = "smscode:cooldown:";
  var current = document.currentScript;
  var SCRIPT_SRC = current && current.src ? current.src : "";

  // Only what the browser must say on its own (before or without a server answer).
  var TEXTS = {
    zh: {
      enterPhone: "请输入手机号。",
      enterCode: "请输入短信验证码。",
      sending: "发送中…",
      verifying: "验证中…",
      resend: "重新发送",
      countdown: "重新发送 ({s})",
      sent: "验证码已发送至 {phone}，{minutes} 分钟内有效。",
      unconfirmed: "短信可能会延迟送达，请稍候，不要重复获取。",
      network: "网络错误，无法连接服务器，请检查网络后重试。",
      badAnswer: "服务器应答无法识别（HTTP {status}），请稍后再试。"
    },
    en: {
      enterPhone: "Enter your phone number.",
      enterCode: "Enter the code from the SMS.",
      sending: "Sending…",
      verifying: "Verifying…",
      resend: "Resend",
      countdown: "Resend ({s})",
      sent: "Code sent to {phone}, valid for {minutes} min.",
      unconfirmed: "The SMS may arrive late: please wait rather than asking for another code.",
      network: "Network error: the server could not be reached. Check your connection and try again.",
      badAnswer: "The server's answer could not be read (HTTP {status}); try again later."
    }
  };

  var bound = [];  // [element, controller] pairs; a WeakMap is not needed for a few forms

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // 59 -> "59s", 299 -> "4:59", 7322 -> "2:02:02".
  function formatWait(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    if (s < 100) {
      return s + "s";
    }
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var rest = s % 60;
    var mm = h > 0 && m < 10 ? "0" + m : String(m);
    return (h > 0 ? h + ":" : "") + mm + ":" + (rest < 10 ? "0" : "") + rest;
  }

  // ASCII digits of what was typed (full-width digits count), to match a masked phone.
  function digitsOf(text) {
    var out = "";
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xff10 && c <= 0xff19) {
        c -= 0xfee0;
      }
      if (c >= 48 && c <= 57) {
        out += String.fromCharCode(c);
      }
    }
    return out;
  }

  // The digits after the stars of a masked phone: "138****8000" -> "8000".
  function tailOf(masked) {
    var star = masked.lastIndexOf("*");
    return digitsOf(star >= 0 ? masked.slice(star + 1) : masked.slice(-4));
  }

  function readAttr(el, name) {
    var value = el.getAttribute("data-smscode-" + name);
    return value === null || value === "" ? undefined : value;
  }

  function pickLang(root) {
    var holder = root.closest ? root.closest("[lang]") : null;
    var lang = readAttr(root, "lang") || (holder && holder.getAttribute("lang")) ||
      document.documentElement.getAttribute("lang") || navigator.language || "zh";
    return lang;
  }

  function urlNextToScript(name) {
    // /sms/static/smscode.js?v=1 -> /sms/send: follows the blueprint's url_prefix.
    var match = /^(.*)\/static\/smscode\.js(\?.*)?$/.exec(SCRIPT_SRC);
    return match ? match[1] + "/" + name : "/sms/" + name;
  }

  // -- storage: the resend countdown survives a reload ---------------------------------
  function loadCooldowns(key) {
    try {
      var raw = window.localStorage.getItem(STORAGE_PREFIX + key);
      var list = raw ? JSON.parse(raw) : [];
      var now = Date.now();
      return Array.isArray(list) ? list.filter(function (entry) {
        return entry && typeof entry.until === "number" && entry.until > now &&
          typeof entry.tail === "string";
      }) : [];
    } catch (err) {
      return [];  // storage disabled (private mode) or garbage: no countdown to restore
    }
  }

  function saveCooldowns(key, list) {
    try {
      if (list.length) {
        window.localStorage.setItem(STORAGE_PREFIX + key, JSON.stringify(list));
      } else {
        window.localStorage.removeItem(STORAGE_PREFIX + key);
      }
    } catch (err) {
      // storage full or disabled: the countdown just does not survive a reload
    }
  }

  // -- one bound form -------------------------------------------------------------------
  function Controller(root, options) {
    this.root = root;
    this.options = Object.assign({}, options || {});
    this.timer = null;
    this.tokenReady = false;
    this.sending = false;
    this.verifying = false;
    this.sendLabel = null;
    this.verifyLabel = null;
    this.sentOnce = false;
    this.otpAbort = null;  // the AbortController of the pending WebOTP request, if any
    this.otpTimer = null;
  }

  Controller.prototype.option = function (name, attr) {
    if (this.options[name] !== undefined) {
      return this.options[name];
    }
    return readAttr(this.root, attr || name);
  };

  Controller.prototype.element = function (name) {
    var given = this.options[name + "Input"] || this.options[name + "Element"];
    if (given) {
      return given;
    }
    if (this.root.matches && this.root.matches("[data-smscode-" + name + "]")) {
      return this.root;
    }
    return this.root.querySelector("[data-smscode-" + name + "]");
  };

  Controller.prototype.texts = function () {
    var lang = String(this.option("lang") || pickLang(this.root)).toLowerCase();
    var base = lang.indexOf("zh") === 0 ? TEXTS.zh : TEXTS.en;
    return Object.assign({}, base, this.options.texts || {});
  };

  Controller.prototype.language = function () {
    return String(this.option("lang") || pickLang(this.root));
  };

  Controller.prototype.storageKey = function () {
    return this.option("key") ||
      (window.location.pathname + "|" + (this.option("purpose") || "login"));
  };

  Controller.prototype.verifyButtons = function () {
    var explicit = this.element("verify");
    if (explicit) {
      return [explicit];
    }
    if (this.root.tagName !== "FORM") {
      return [];
    }
    return Array.prototype.filter.call(
      this.root.querySelectorAll("button, input[type=submit]"),
      function (b) { return (b.type || "submit") === "submit"; });
  };

  // -- messages ------------------------------------------------------------------------
  Controller.prototype.show = function (text, state, field) {
    var boxes = this.root.querySelectorAll("[data-smscode-message]");
    var target = null;
    var fallback = null;
    for (var i = 0; i < boxes.length; i++) {
      var which = boxes[i].getAttribute("data-smscode-message");
      if (field && which === field) {
        target = boxes[i];
      } else if (!which && !fallback) {
        fallback = boxes[i];
      }
    }
    target = target || fallback || boxes[0] || null;
    for (var j = 0; j < boxes.length; j++) {
      if (boxes[j] !== target) {
        boxes[j].textContent = "";
        boxes[j].hidden = true;
        boxes[j].removeAttribute("data-smscode-state");
      }
    }
    this.markInvalid(state === "error" ? field : null);
    if (!target) {
      return;
    }
    if (!target.hasAttribute("aria-live")) {
      target.setAttribute("aria-live", "polite");
    }
    target.textContent = text;
    target.hidden = !text;
    target.setAttribute("data-smscode-state", state);
    target.classList.toggle("smscode-error", state === "error");
    target.classList.toggle("smscode-info", state !== "error");
  };

  Controller.prototype.clear = function () {
    this.show("", "info", null);
  };

  Controller.prototype.markInvalid = function (field) {
    var names = ["phone", "code"];
    for (var i = 0; i < names.length; i++) {
      var input = this.element(names[i]);
      if (!input) {
        continue;
      }
      if (names[i] === field) {
        input.setAttribute("aria-invalid", "true");
      } else {
        input.removeAttribute("aria-invalid");
      }
    }
  };

  Controller.prototype.emit = function (name, detail) {
    var event;
    try {
      event = new CustomEvent("smscode:" + name, { bubbles: true, cancelable: true, detail: detail });
    } catch (err) {
      return true;  // very old WebViews without the CustomEvent constructor
    }
    return this.root.dispatchEvent(event);
  };

  // -- the endpoints -------------------------------------------------------------------
  // Always resolves: the server's JSON (ok or not), or {ok: false, error: "network_error"}.
  Controller.prototype.post = async function (url, body) {
    var texts = this.texts();
    var response;
    try {
      response = await window.fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "Accept-Language": this.language()
        },
        body: JSON.stringify(body),
        credentials: "same-origin"
      });
    } catch (err) {
      return { ok: false, error: "network_error", message: texts.network, status: 0 };
    }
    var data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!data || typeof data !== "object") {
      data = { ok: false, error: "bad_response",
               message: format(texts.badAnswer, { status: response.status }) };
    }
    if (!response.ok) {
      data.ok = false;
    }
    data.status = response.status;
    var header = response.headers.get("Retry-After");
    if ((data.retry_after === undefined || data.retry_after === null) && header && /^\d+$/.test(header)) {
      data.retry_after = Number(header);
    }
    return data;
  };

  // -- the resend countdown ------------------------------------------------------------
  Controller.prototype.remember = function (tail, masked, seconds) {
    var key = this.storageKey();
    var list = loadCooldowns(key).filter(function (entry) { return entry.tail !== tail; });
    list.push({ tail: tail, phone: masked || "", until: Date.now() + Math.ceil(seconds) * 1000 });
    saveCooldowns(key, list);
  };

  // The live cooldown for what the phone field holds now: the entry whose last digits
  // match it, or (field empty, e.g. after a reload) the most recent one.
  Controller.prototype.liveCooldown = function () {
    var list = loadCooldowns(this.storageKey());
    if (!list.length) {
      return null;
    }
    var phone = this.element("phone");
    var typed = phone ? digitsOf(phone.value) : "";
    if (!typed) {
      return list.reduce(function (a, b) { return a.until >= b.until ? a : b; });
    }
    for (var i = 0; i < list.length; i++) {
      var tail = list[i].tail;
      if (tail && typed.slice(-tail.length) === tail) {
        return list[i];
      }
    }
    return null;
  };

  Controller.prototype.refreshButton = function () {
    var button = this.element("send");
    if (!button || this.sending) {
      return;
    }
    var texts = this.texts();
    var entry = this.liveCooldown();
    var left = entry ? Math.ceil((entry.until - Date.now()) / 1000) : 0;
    if (left > 0) {
      button.disabled = true;
      button.setAttribute("data-smscode-countdown", String(left));
      button.textContent = format(texts.countdown, { s: formatWait(left) });
      this.startTimer();
      return;
    }
    button.disabled = false;
    button.removeAttribute("data-smscode-countdown");
    button.textContent = this.sentOnce ? texts.resend : this.sendLabel;
    this.stopTimer();
  };

  Controller.prototype.startTimer = function () {
    if (this.timer === null) {
      var self = this;
      // Counted against the clock, so a throttled background tab still ends on time.
      this.timer = window.setInterval(function () { self.refreshButton(); }, 250);
    }
  };

  Controller.prototype.stopTimer = function () {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
  };

  // -- send ----------------------------------------------------------------------------
  Controller.prototype.send = async function () {
    var phoneInput = this.element("phone");
    var button = this.element("send");
    var texts = this.texts();
    var phone = phoneInput ? phoneInput.value.trim() : "";
    if (!phone) {
      this.show(texts.enterPhone, "error", "phone");
      if (phoneInput) {
        phoneInput.focus();
      }
      return null;
    }
    if (this.sending) {
      return null;
    }
    this.clear();
    this.stopWebOtp();  // a new code is coming: the previous one's request ends
    this.sending = true;
    if (button) {
      button.disabled = true;
      button.textContent = texts.sending;
    }
    var body = { phone: phone };
    var purpose = this.option("purpose");
    if (purpose) {
      body.purpose = purpose;
    }
    var data = await this.post(this.option("sendUrl", "send-url") || urlNextToScript("send"), body);
    this.sending = false;
    var tail = digitsOf(phone).slice(-4);
    if (data.ok) {
      this.sentOnce = true;
      if (data.resend_in > 0) {
        this.remember(tailOf(String(data.phone || "")) || tail, data.phone, data.resend_in);
      }
      var minutes = Math.max(1, Math.round((data.expires_in || 60) / 60));
      this.show(data.message || (data.delivery === "unconfirmed" ? texts.unconfirmed :
        format(texts.sent, { phone: data.phone, minutes: minutes })), "info", "phone");
      this.refreshButton();
      var codeInput = this.element("code");
      if (codeInput) {
        codeInput.focus();
      }
      this.startWebOtp(data.expires_in > 0 ? data.expires_in : 300);  // 300: the default TTL
      if (this.options.onSent) {
        this.options.onSent(data, this);
      }
      this.emit("sent", data);
      return data;
    }
    if (data.status === 429 && data.retry_after > 0) {
      this.remember(tail, "", data.retry_after);
    }
    this.show(data.message || format(texts.badAnswer, { status: data.status }), "error", "phone");
    this.refreshButton();
    if (this.options.onError) {
      this.options.onError(data, this);
    }
    this.emit("error", data);
    return data;
  };

  // -- WebOTP: the code read from an origin-bound SMS ---------------------------------
  // An SMS whose last line is "@<host> #<code>" (the approved template carries that line)
  // is handed by the browser to a page of that exact host only, after the user agrees:
  // a phishing page on another origin never receives it. Opt out with
  // data-smscode-webotp="off" or {webotp: false}.
  Controller.prototype.webOtpWanted = function () {
    var setting = this.option("webotp");
    if (setting === false || String(setting) === "off" || String(setting) === "false") {
      return false;
    }
    return "OTPCredential" in window && typeof window.AbortController === "function" &&
      !!navigator.credentials && typeof navigator.credentials.get === "function";
  };

  // Ends the pending request (a new send, a verify of a typed code, the page going away,
  // the code's lifetime over): its promise then rejects with AbortError, which is ignored.
  // settled: the request already answered, only forget it.
  Controller.prototype.stopWebOtp = function (settled) {
    if (this.otpTimer !== null) {
      window.clearTimeout(this.otpTimer);
      this.otpTimer = null;
    }
    if (this.otpAbort !== null) {
      var pending = this.otpAbort;
      this.otpAbort = null;
      if (!settled) {
        pending.abort();
      }
    }
  };

  // After a successful send: wait (at most the code's lifetime) for the SMS, then fill the
  // code field and verify as a submit would. Any failure (no API, AbortError,
  // NotAllowedError when the user declines, InvalidStateError...) changes nothing.
  Controller.prototype.startWebOtp = function (seconds) {
    this.stopWebOtp();
    var codeInput = this.element("code");
    if (!codeInput || !this.webOtpWanted()) {
      return;
    }
    var self = this;
    var controller = new window.AbortController();
    var request;
    try {
      request = navigator.credentials.get({ otp: { transport: ["sms"] }, signal: controller.signal });
    } catch (err) {
      return;
    }
    this.otpAbort = controller;
    this.otpTimer = window.setTimeout(function () {
      if (self.otpAbort === controller) {
        self.stopWebOtp();
      }
    }, Math.max(1, seconds) * 1000);
    Promise.resolve(request).then(function (otp) {
      if (self.otpAbort !== controller) {
        return;  // superseded or stopped meanwhile: an old answer is not used
      }
      self.stopWebOtp(true);
      if (!otp || typeof otp.code !== "string" || !otp.code || self.verifying || self.tokenReady) {
        return;
      }
      codeInput.value = otp.code;
      try {
        codeInput.dispatchEvent(new Event("input", { bubbles: true }));
      } catch (err) {
        // very old WebViews without the Event constructor: the value is set all the same
      }
      self.verify();
    }, function () {
      if (self.otpAbort === controller) {
        self.stopWebOtp(true);
      }
    });
  };

  // -- verify, then hand the token over ------------------------------------------------
  Controller.prototype.setVerifying = function (on) {
    var texts = this.texts();
    var buttons = this.verifyButtons();
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      if (on) {
        b.setAttribute("data-smscode-label", b.tagName === "INPUT" ? b.value : b.textContent);
        b.disabled = true;
        if (b.tagName === "INPUT") { b.value = texts.verifying; } else { b.textContent = texts.verifying; }
      } else if (b.hasAttribute("data-smscode-label")) {
        b.disabled = false;
        var label = b.getAttribute("data-smscode-label");
        if (b.tagName === "INPUT") { b.value = label; } else { b.textContent = label; }
        b.removeAttribute("data-smscode-label");
      }
    }
  };

  Controller.prototype.verify = async function () {
    var texts = this.texts();
    var phoneInput = this.element("phone");
    var codeInput = this.element("code");
    var phone = phoneInput ? phoneInput.value.trim() : "";
    var code = codeInput ? codeInput.value.trim() : "";
    if (!phone) {
      this.show(texts.enterPhone, "error", "phone");
      if (phoneInput) { phoneInput.focus(); }
      return null;
    }
    if (!code) {
      this.show(texts.enterCode, "error", "code");
      if (codeInput) { codeInput.focus(); }
      return null;
    }
    if (this.verifying) {
      return null;
    }
    this.verifying = true;
    this.stopWebOtp();  // a code typed by hand is being verified: the SMS's is not needed
    this.clear();
    this.setVerifying(true);
    var body = { phone: phone, code: code };
    var purpose = this.option("purpose");
    if (purpose) {
      body.purpose = purpose;
    }
    var data = await this.post(this.option("verifyUrl", "verify-url") || urlNextToScript("verify"),
      body);
    this.verifying = false;
    if (!data.ok) {
      this.setVerifying(false);
      var field = data.field === "phone" || data.error === "invalid_phone" ||
        data.error === "region_not_allowed" ? "phone" : "code";
      this.show(data.message || format(texts.badAnswer, { status: data.status }), "error", field);
      if (field === "code" && codeInput) {
        codeInput.select();
      }
      if (this.options.onError) {
        this.options.onError(data, this);
      }
      this.emit("error", data);
      return data;
    }
    var tokenInput = this.element("token");
    if (tokenInput) {
      tokenInput.value = data.token;
    }
    var proceed = this.emit("verified", data);
    if (this.options.onVerified) {
      this.setVerifying(false);
      this.options.onVerified(data, this);
      return data;
    }
    var submit = this.option("submit");
    if (proceed && this.root.tagName === "FORM" && tokenInput && String(submit) !== "false") {
      this.tokenReady = true;
      // The prototype's submit: a control named "submit" would shadow form.submit.
      HTMLFormElement.prototype.submit.call(this.root);
    } else {
      this.setVerifying(false);
    }
    return data;
  };

  // -- wiring --------------------------------------------------------------------------
  Controller.prototype.attach = function () {
    var self = this;
    var sendButton = this.element("send");
    var phoneInput = this.element("phone");
    var verifyButton = this.element("verify");
    if (sendButton) {
      this.sendLabel = sendButton.textContent;
      sendButton.addEventListener("click", function (event) {
        event.preventDefault();
        self.send();
      });
    }
    if (phoneInput) {
      phoneInput.addEventListener("input", function () { self.refreshButton(); });
    }
    var codeField = this.element("code");
    if (codeField) {
      // The browser's own SMS-code autofill (iOS/macOS Safari, Chrome): a value the page
      // set itself (e.g. inputmode="text" for letter codes) is kept.
      if (!codeField.hasAttribute("autocomplete")) {
        codeField.setAttribute("autocomplete", "one-time-code");
      }
      if (!codeField.hasAttribute("inputmode")) {
        codeField.setAttribute("inputmode", "numeric");
      }
    }
    // Leaving the page (or into the back/forward cache) ends a pending WebOTP request.
    // Not visibilitychange: the user may switch to the SMS app and come back.
    window.addEventListener("pagehide", function () { self.stopWebOtp(); });
    if (verifyButton) {
      verifyButton.addEventListener("click", function (event) {
        event.preventDefault();
        self.verify();
      });
    }
    if (this.root.tagName === "FORM") {
      this.root.addEventListener("submit", function (event) {
        if (self.tokenReady) {
          return;
        }
        event.preventDefault();
        self.verify();
      });
    }
    // Back from the next page (back/forward cache): the used token is worth nothing.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        self.tokenReady = false;
        var tokenInput = self.element("token");
        if (tokenInput) { tokenInput.value = ""; }
        self.setVerifying(false);
        self.refreshButton();
      }
    });
    this.refreshButton();
    return this;
  };

  function bind(root, options) {
    for (var i = 0; i < bound.length; i++) {
      if (bound[i][0] === root) {
        Object.assign(bound[i][1].options, options || {});
        bound[i][1].refreshButton();
        return bound[i][1];
      }
    }
    var controller = new Controller(root, options).attach();
    bound.push([root, controller]);
    return controller;
  }

  function bindAll() {
    var roots = document.querySelectorAll("[data-smscode]");
    for (var i = 0; i < roots.length; i++) {
      bind(roots[i]);
    }
  }

  window.SmsCode = { bind: bind, bindAll: bindAll, version: VERSION, formatWait: formatWait };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bindAll);
  } else {
    bindAll();
  }
})(window, document);
