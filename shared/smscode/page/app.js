// Sign-up page: send an SMS code, then verify it. No dependencies; CSP-safe (no inline code).
(() => {
  "use strict";

  const TEXT = {
    en: {
      title: "Sign up", heading: "Create your account",
      intro: "We will text a verification code to your phone.",
      phoneLabel: "Phone number", phonePlaceholder: "138 0013 8000",
      phoneHint: "Mainland China mobile number.",
      phoneInvalid: "Enter an 11-digit mainland China mobile number, e.g. 138 0013 8000.",
      send: "Send code", sending: "Sending…", resendIn: "Resend in {n} s",
      codeLabel: "Verification code", codePlaceholder: "6-digit code",
      codeMissing: "Enter the code from the text message.",
      verify: "Verify", verifying: "Verifying…",
      sent: "Code sent. It is valid for {n} min.", verified: "Phone number verified",
      invalid_phone: "That is not a mainland China mobile number.",
      invalid_request: "The request was not understood. Reload the page and try again.",
      payload_too_large: "The request was too large.",
      rate_limited: "Too many codes requested. Try again in {n} s.",
      fraud_suspected: "Codes to numbers like this one are paused for now. Please try again later.",
      unavailable: "The service is temporarily unavailable. Please try again shortly.",
      invalid_code: "Wrong code. {n} attempts left.", invalid_code_one: "Wrong code. 1 attempt left.",
      invalid_code_bare: "Wrong code.",
      no_active_code: "There is no active code for this number. Request a new one.",
      too_many_attempts: "Too many wrong attempts. Request a new code.",
      network: "Network error. Check your connection and try again.",
      unknown: "Something went wrong (HTTP {n}). Please try again.",
      tokenHeading: "Verification token",
      tokenHint: "Your backend checks it against /.well-known/jwks.json.",
    },
    zh: {
      title: "注册", heading: "创建账号",
      intro: "我们会向你的手机发送一条验证码短信。",
      phoneLabel: "手机号", phonePlaceholder: "138 0013 8000",
      phoneHint: "仅支持中国大陆手机号。",
      phoneInvalid: "请输入 11 位中国大陆手机号，例如 138 0013 8000。",
      send: "获取验证码", sending: "发送中…", resendIn: "{n} 秒后重发",
      codeLabel: "验证码", codePlaceholder: "6 位数字验证码",
      codeMissing: "请输入短信中的验证码。",
      verify: "验证", verifying: "验证中…",
      sent: "验证码已发送，{n} 分钟内有效。", verified: "手机号验证成功",
      invalid_phone: "该号码不是中国大陆手机号。",
      invalid_request: "请求无效，请刷新页面后重试。",
      payload_too_large: "请求内容过大。",
      rate_limited: "获取验证码过于频繁，请 {n} 秒后再试。",
      fraud_suspected: "该号段暂时无法发送验证码，请稍后再试。",
      unavailable: "服务暂时不可用，请稍后重试。",
      invalid_code: "验证码错误，还可尝试 {n} 次。", invalid_code_one: "验证码错误，还可尝试 1 次。",
      invalid_code_bare: "验证码错误。",
      no_active_code: "该号码没有有效的验证码，请重新获取。",
      too_many_attempts: "错误次数过多，请重新获取验证码。",
      network: "网络错误，请检查网络连接后重试。",
      unknown: "出错了（HTTP {n}），请稍后重试。",
      tokenHeading: "验证令牌",
      tokenHint: "你的后端用 /.well-known/jwks.json 校验它。",
    },
  };

  // The server replaces __LANG__; if it did not (e.g. the file opened directly), ask the browser.
  const tag = /^(zh|en)/i.test(document.documentElement.lang)
    ? document.documentElement.lang : navigator.language || "en";
  const lang = tag.toLowerCase().startsWith("zh") ? "zh" : "en";
  const t = (key, vars = {}) =>
    (TEXT[lang][key] ?? TEXT.en[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));

  // API URLs are resolved against where app.js came from (/assets/ → /), so a path prefix still works.
  const script = document.currentScript;
  const base = new URL("..", script ? script.src : location.href);
  const TIMEOUT_MS = 15000;
  const ERRORS = ["invalid_phone", "invalid_request", "payload_too_large", "rate_limited", "unavailable",
    "fraud_suspected", "invalid_code", "no_active_code", "too_many_attempts", "network"];

  const $ = (id) => document.getElementById(id);
  const form = $("signup"), phone = $("phone"), code = $("code");
  const sendBtn = $("send"), verifyBtn = $("verify"), status = $("status");
  const tokenBox = $("token"), claimsList = $("claims");

  function localize() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  }

  const setStatus = (state, text) => { status.dataset.state = state; status.textContent = text; };

  function fieldError(input, text) {
    const box = $(`${input.id}-error`);
    box.textContent = text || "";
    box.hidden = !text;
    input.setAttribute("aria-invalid", String(Boolean(text)));
    return !text;
  }

  // Chinese IMEs often type full-width digits and "＋"; the server only accepts ASCII.
  const ascii = (s) => s.trim().replace(/[０-９＋]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));

  // Only a plausibility check (same shapes the server accepts); the server has the final word.
  function plausiblePhone(value) {
    const digits = ascii(value).replace(/[\s\-().]/g, "").replace(/^\+?86(?=\d{11}$)/, "");
    return /^1[3-9]\d{9}$/.test(digits);
  }
  const checkPhone = () => fieldError(phone, plausiblePhone(phone.value) ? "" : t("phoneInvalid"));

  // Resolves to {ok, http, data}; never rejects. Non-JSON answers (proxy error pages) become "unknown".
  async function post(path, body) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(new URL(path, base), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal: ctrl.signal,
      });
      let data = null;
      try { data = await res.json(); } catch { /* not JSON */ }
      if (!data || typeof data !== "object") data = { status: "error", error: "unknown" };
      if (data.error === "rate_limited" && data.retry_after == null) {
        data.retry_after = Number(res.headers.get("Retry-After")) || 60;
      }
      return { ok: res.ok && data.status === "success", http: res.status, data };
    } catch {
      return { ok: false, http: 0, data: { status: "error", error: "network" } };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorText({ http, data }) {
    const n = Number(data.attempts_left);
    if (data.error === "invalid_code") {
      if (data.attempts_left == null || !Number.isFinite(n)) return t("invalid_code_bare");
      return t(n === 1 ? "invalid_code_one" : "invalid_code", { n });
    }
    if (data.error === "rate_limited") return t("rate_limited", { n: data.retry_after });
    return ERRORS.includes(data.error) ? t(data.error) : t("unknown", { n: http });
  }

  // Countdown against a deadline rather than counting ticks: background tabs throttle timers.
  let countdownTimer = 0;
  function countdown(seconds) {
    clearInterval(countdownTimer);
    countdownTimer = 0;
    const end = Date.now() + Math.max(0, Number(seconds) || 0) * 1000;
    const tick = () => {
      const left = Math.ceil((end - Date.now()) / 1000);
      if (left > 0) {
        sendBtn.disabled = true;
        sendBtn.textContent = t("resendIn", { n: left });
        return;
      }
      clearInterval(countdownTimer);
      countdownTimer = 0;
      sendBtn.disabled = false;
      sendBtn.textContent = t("send");
    };
    tick();
    if (sendBtn.disabled) countdownTimer = setInterval(tick, 250);
  }

  // Clearing the status first makes screen readers announce a repeated message again.
  function busy(button, labelKey) {
    setStatus("info", "");
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = t(labelKey);
  }

  async function sendCode() {
    if (sendBtn.disabled) return;
    if (!checkPhone()) return phone.focus();
    busy(sendBtn, "sending");
    const answer = await post("codes", { phone: ascii(phone.value) });
    sendBtn.removeAttribute("aria-busy");
    if (answer.ok) {
      setStatus("info", t("sent", { n: Math.ceil((Number(answer.data.expires_in) || 300) / 60) }));
      countdown(answer.data.resend_after ?? 60);
      code.focus();
    } else {
      setStatus("error", errorText(answer));
      countdown(answer.data.error === "rate_limited" ? answer.data.retry_after : 0);
      if (answer.data.error === "invalid_phone") phone.focus();
    }
  }

  // The token's claims, decoded for show only: the app's backend verifies the signature.
  function showClaims(token) {
    tokenBox.hidden = true;
    claimsList.replaceChildren();
    if (typeof token !== "string") return;
    let claims;
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
      claims = JSON.parse(new TextDecoder().decode(bytes));
    } catch { return; }
    const times = new Set(["iat", "exp"]);
    for (const [name, value] of Object.entries(claims)) {
      const term = document.createElement("dt"), detail = document.createElement("dd");
      term.textContent = name;
      detail.textContent = times.has(name) ? `${value} (${new Date(value * 1000).toLocaleString(tag)})` : String(value);
      detail.dataset.claim = name;
      claimsList.append(term, detail);
    }
    tokenBox.hidden = false;
  }

  async function verifyCode() {
    if (verifyBtn.disabled) return;
    if (!checkPhone()) return phone.focus();
    const value = ascii(code.value);
    if (!fieldError(code, value ? "" : t("codeMissing"))) return code.focus();
    busy(verifyBtn, "verifying");
    showClaims(null);
    const answer = await post("codes/verify", { phone: ascii(phone.value), code: value });
    verifyBtn.removeAttribute("aria-busy");
    verifyBtn.disabled = false;
    verifyBtn.textContent = t("verify");
    if (answer.ok) {
      setStatus("success", t("verified"));
      showClaims(answer.data.token);
    } else {
      setStatus("error", errorText(answer));
      if (answer.data.error === "invalid_code") code.select();
    }
  }

  localize();
  phone.addEventListener("blur", () => { if (phone.value.trim()) checkPhone(); });
  // Once an error is showing, clear it as soon as the value becomes plausible.
  phone.addEventListener("input", () => { if (phone.getAttribute("aria-invalid") === "true") checkPhone(); });
  code.addEventListener("input", () => { if (code.value.trim()) fieldError(code, ""); });
  sendBtn.addEventListener("click", sendCode);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // Enter in the phone field means "send me a code", not "verify".
    if (document.activeElement === phone) sendCode(); else verifyCode();
  });
})();
