// The login and signup pages: "get code" calls POST /sms/send and counts down the resend
// wait; submit calls POST /sms/verify, then posts the returned single-use token to the page's
// own view (/login or /signup), which signs the user in. No framework, no network but ours.
"use strict";

(function () {
  const form = document.getElementById("sms-form");
  if (!form) {
    return;
  }
  const purpose = form.dataset.purpose;
  const sendUrl = form.dataset.sendUrl;
  const verifyUrl = form.dataset.verifyUrl;
  const phoneInput = document.getElementById("phone");
  const codeInput = document.getElementById("code");
  const nameInput = document.getElementById("name"); // signup only
  const sendButton = document.getElementById("send-code");
  const submitButton = document.getElementById("submit");
  const errorBox = document.getElementById("error");
  const noticeBox = document.getElementById("notice");
  const tokenForm = document.getElementById("token-form");

  const SEND_LABEL = "获取验证码 Get code";
  const RESEND_LABEL = "重新发送 Resend";
  const SUBMIT_LABEL = submitButton.textContent;
  const LONGEST_COUNTDOWN = 300; // longer waits are told in words, not counted down

  // -- messages -------------------------------------------------------------------------
  function formatWait(seconds) {
    const s = Math.max(1, Math.ceil(Number(seconds) || 0));
    if (s < 60) {
      return { zh: s + " 秒", en: s + (s === 1 ? " second" : " seconds") };
    }
    if (s < 3600) {
      const m = Math.ceil(s / 60);
      return { zh: m + " 分钟", en: m + (m === 1 ? " minute" : " minutes") };
    }
    const h = Math.ceil(s / 3600);
    return { zh: h + " 小时", en: h + (h === 1 ? " hour" : " hours") };
  }

  // One Chinese + English sentence for every error code of /sms/send and /sms/verify.
  function describeError(data) {
    const wait = data.retry_after != null ? formatWait(data.retry_after) : null;
    switch (data.error) {
      case "invalid_request":
        return "请求有误，请检查填写的内容。 Invalid request: " +
          (data.message || "please check the form.");
      case "invalid_phone":
        return "手机号格式不正确，请输入有效的手机号码。 This is not a valid mobile phone number.";
      case "region_not_allowed":
        return "暂不支持向该地区的手机号发送验证码。 Codes cannot be sent to phone numbers in this region.";
      case "invalid_code": {
        const left = Number(data.attempts_left);
        if (left > 0) {
          return "验证码不正确，还可以再试 " + left + " 次。 Wrong code: " + left +
            (left === 1 ? " attempt" : " attempts") + " left.";
        }
        return "验证码不正确，且已没有剩余尝试次数，请稍后重新获取。 " +
          "Wrong code and no attempts left: request a new code later.";
      }
      case "code_expired":
        return "验证码已过期或尚未获取，请重新获取。 The code has expired or was never sent: request a new one.";
      case "too_many_attempts":
        return wait
          ? "错误次数过多，请 " + wait.zh + "后再试。 Too many wrong codes: try again in " + wait.en + "."
          : "错误次数过多，请稍后再试。 Too many wrong codes: try again later.";
      case "throttled":
        return wait
          ? "操作过于频繁，请 " + wait.zh + "后再试。 Too many requests: try again in " + wait.en + "."
          : "操作过于频繁，请稍后再试。 Too many requests: try again later.";
      case "provider_error":
        return "短信发送失败，请稍后再试。 The SMS could not be sent: try again later.";
      case "storage_unavailable":
        return "验证服务暂时不可用，请稍后再试。 The verification service is temporarily unavailable: try again shortly.";
      case "network_error":
        return "网络错误，无法连接服务器，请检查网络后重试。 Network error: the server could not be reached. Check your connection and try again.";
      default:
        return "出错了" + (data.status ? "（HTTP " + data.status + "）" : "") + "，请稍后再试。 " +
          "Something went wrong" + (data.status ? " (HTTP " + data.status + ")" : "") +
          ": " + (data.message || "try again later.");
    }
  }

  function showError(text) {
    noticeBox.hidden = true;
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function showNotice(text) {
    noticeBox.textContent = text;
    noticeBox.hidden = false;
  }

  function clearMessages() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    noticeBox.hidden = true;
  }

  // -- the endpoints --------------------------------------------------------------------
  // Always resolves: {ok: true, ...} or {ok: false, error, ...}, network failures included.
  async function postJson(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      return { ok: false, error: "network_error" };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!data || typeof data !== "object") {
      data = { ok: false, error: "bad_response" };
    }
    if (!response.ok) {
      data.ok = false;
    }
    data.status = response.status;
    if (data.retry_after == null && response.headers.get("Retry-After")) {
      data.retry_after = Number(response.headers.get("Retry-After"));
    }
    return data;
  }

  // -- the resend countdown -------------------------------------------------------------
  let countdownTimer = null;

  function startCountdown(seconds) {
    clearInterval(countdownTimer);
    // Counted against the clock, so a throttled background tab still ends on time.
    const endsAt = Date.now() + Math.ceil(seconds) * 1000;
    const tick = function () {
      const left = Math.ceil((endsAt - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(countdownTimer);
        sendButton.disabled = false;
        sendButton.textContent = RESEND_LABEL;
        return;
      }
      sendButton.disabled = true;
      sendButton.textContent = "重新发送 (" + left + "s)";
    };
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  sendButton.addEventListener("click", async function () {
    clearMessages();
    const phone = phoneInput.value.trim();
    if (!phone) {
      showError("请输入手机号。 Enter your phone number.");
      phoneInput.focus();
      return;
    }
    const label = sendButton.textContent;
    sendButton.disabled = true;
    sendButton.textContent = "发送中… Sending…";
    const data = await postJson(sendUrl, { phone: phone, purpose: purpose });
    if (data.ok) {
      const minutes = Math.max(1, Math.round(data.expires_in / 60));
      if (data.delivery === "unconfirmed") {
        showNotice("短信可能会延迟送达，请稍候，不要重复获取。 The SMS may arrive late: " +
          "please wait rather than asking for another code.");
      } else {
        showNotice("验证码已发送至 " + data.phone + "，" + minutes + " 分钟内有效。 " +
          "Code sent to " + data.phone + ", valid for " + minutes +
          (minutes === 1 ? " minute." : " minutes."));
      }
      if (data.resend_in > 0) {
        startCountdown(data.resend_in);
      } else {
        sendButton.disabled = false;
        sendButton.textContent = RESEND_LABEL;
      }
      codeInput.focus();
      return;
    }
    showError(describeError(data));
    if (data.error === "throttled" && data.retry_after > 0 &&
        data.retry_after <= LONGEST_COUNTDOWN) {
      startCountdown(data.retry_after);
    } else {
      sendButton.disabled = false;
      sendButton.textContent = label;
    }
    if (data.error === "invalid_phone" || data.error === "region_not_allowed") {
      phoneInput.focus();
    }
  });

  // -- verify, then hand the token to the page's own view -------------------------------
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearMessages();
    const phone = phoneInput.value.trim();
    const code = codeInput.value.trim();
    const name = nameInput ? nameInput.value.trim() : "";
    if (!phone) {
      showError("请输入手机号。 Enter your phone number.");
      phoneInput.focus();
      return;
    }
    if (!code) {
      showError("请输入短信验证码。 Enter the code from the SMS.");
      codeInput.focus();
      return;
    }
    if (nameInput && !name) {
      // Checked before /sms/verify, which uses the code up.
      showError("请输入昵称。 Enter a display name.");
      nameInput.focus();
      return;
    }
    submitButton.disabled = true;
    submitButton.textContent = "验证中… Verifying…";
    const data = await postJson(verifyUrl, { phone: phone, code: code, purpose: purpose });
    if (!data.ok) {
      showError(describeError(data));
      submitButton.disabled = false;
      submitButton.textContent = SUBMIT_LABEL;
      if (data.error === "invalid_code" || data.error === "invalid_request") {
        codeInput.select();
      }
      return;
    }
    tokenForm.elements.token.value = data.token;
    if (tokenForm.elements.name) {
      tokenForm.elements.name.value = name;
    }
    tokenForm.submit(); // a normal navigation: the view redirects or shows its error
  });

  // Back from the next page (back/forward cache): the submit button must work again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      submitButton.disabled = false;
      submitButton.textContent = SUBMIT_LABEL;
    }
  });

  sendButton.textContent = SEND_LABEL;
})();
