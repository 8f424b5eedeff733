// Chat page: streams /v1/chat/completions, then renders citations as clickable markers.
"use strict";
const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");
const apikey = document.getElementById("apikey");
apikey.value = localStorage.getItem("policybot-key") || "";
// The user's earlier questions in this conversation: follow-ups ("那农村呢？") are resolved from them.
let thread = [];
apikey.addEventListener("change", () => localStorage.setItem("policybot-key", apikey.value));

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A random id per browser, so the question log can tell users apart without knowing who they are.
let clientId = localStorage.getItem("policybot-client");
if (!clientId) {
  clientId = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  localStorage.setItem("policybot-client", clientId);
}

function headers() {
  const h = { "Content-Type": "application/json", "X-Client-Id": clientId };
  if (apikey.value) h.Authorization = "Bearer " + apikey.value;
  return h;
}

// 👍 / 👎 under an answer; 👎 opens a comment box. Sent to POST /v1/feedback with the answer's id.
function addFeedback(msg, answerId) {
  if (!answerId) return;
  const box = el("div", "feedback");
  const up = el("button", "rate up", "👍 有用");
  const down = el("button", "rate down", "👎 有误");
  up.type = down.type = "button";
  up.title = "回答有用";
  down.title = "回答有误或没有帮助";
  const status = el("span", "rated");
  const send = async (rating, comment) => {
    const res = await fetch("/v1/feedback", { method: "POST", headers: headers(),
      body: JSON.stringify({ answer_id: answerId, rating, comment: comment || null }) });
    status.textContent = res.ok ? "谢谢反馈" : "反馈未能提交";
    up.disabled = down.disabled = res.ok;
  };
  up.addEventListener("click", () => send("up"));
  down.addEventListener("click", () => {
    if (box.querySelector("form")) return;
    const form = el("form", "comment");
    const text = el("textarea");
    text.rows = 2;
    text.maxLength = 2000;
    text.placeholder = "哪里不对？（可不填）";
    const ok = el("button", null, "提交");
    ok.type = "submit";
    form.append(text, ok);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); send("down", text.value.trim()); form.remove(); });
    box.appendChild(form);
    text.focus();
  });
  box.append(up, down, status);
  msg.appendChild(box);
}

// The answer part of the streamed text, with [n] turned into buttons that open citation n.
// Extractive answers put a marker only at the end of a quoted line, so a literal "[1]" inside a
// quoted clause stays text; generative answers place markers inside sentences.
function renderAnswer(box, answer, citations, mode) {
  box.textContent = "";
  const parts = answer.split(/(\[\d+\](?=\n|$))/);
  const inline = mode === "generative";
  for (const part of (inline ? answer.split(/(\[\d+\])/) : parts)) {
    const m = part.match(/^\[(\d+)\]$/);
    if (m && citations[Number(m[1]) - 1]) {
      const b = el("button", "marker", m[1]);
      b.type = "button";
      b.title = "查看引用 [" + m[1] + "]";
      b.addEventListener("click", () => {
        const d = document.getElementById(box.dataset.id + "-c" + m[1]);
        d.open = true;
        d.scrollIntoView({ block: "nearest" });
      });
      box.appendChild(b);
    } else {
      box.appendChild(document.createTextNode(part));
    }
  }
}

function renderCitations(msg, id, citations) {
  const list = el("div", "citations");
  citations.forEach((c) => {
    const d = el("details", "citation");
    d.id = id + "-c" + c.n;
    const summary = el("summary", null, "[" + c.n + "] 《" + c.title + "》" + (c.doc_number ? "（" + c.doc_number + "）" : "") + c.ref);
    if (c.added_by_user) summary.appendChild(el("span", "user-added", "用户添加·未核实"));
    d.appendChild(summary);
    d.appendChild(el("div", "section", c.section + " · " + c.clause_id));
    if (c.context) d.appendChild(el("div", "section", c.context));
    d.appendChild(el("blockquote", null, c.text));
    list.appendChild(d);
  });
  msg.appendChild(list);
}

function addTools(msg, text) {
  const tools = el("div", "tools");
  const copy = el("button", "copy", "复制回答");
  copy.type = "button";
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(text); copy.textContent = "已复制"; }
    catch (e) { copy.textContent = "复制失败"; }
  });
  tools.appendChild(copy);
  msg.appendChild(tools);
}

async function ask(question) {
  log.appendChild(el("div", "msg user", question));
  const msg = el("div", "msg bot");
  const id = "a" + Date.now();
  const body = el("div", "answer");
  body.dataset.id = id;
  body.textContent = "正在查找……";
  msg.appendChild(body);
  log.appendChild(msg);
  send.disabled = true;
  let text = "";
  let final = null;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: "policy-bot", stream: true,
        messages: thread.concat([question]).map((content) => ({ role: "user", content })) }),
    });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || ("HTTP " + res.status));
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    body.textContent = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, cut).trim();
        buf = buf.slice(cut + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        const delta = chunk.choices[0].delta.content || "";
        text += delta;
        body.textContent = text;
        if (chunk.choices[0].finish_reason) final = chunk;
      }
    }
    if (!final) throw new Error("回答中断，请重试");
    thread.push(question);
    if (final.resolved_question) msg.insertBefore(el("div", "resolved", "按「" + final.resolved_question + "」理解"), body);
    if (final.found || final.reason === "delegated") {
      // delegated: the documents set no figure; the answer quotes the clause that says who sets it.
      const answer = text.split("\n\n引用：")[0];
      if (!final.found) msg.insertBefore(el("div", "badge", "文件未规定具体数额，由有关机关制定"), body);
      renderAnswer(body, answer, final.citations, final.mode);
      renderCitations(msg, id, final.citations);
    } else {
      msg.classList.add("notfound");
      msg.insertBefore(el("div", "badge", "未在语料中找到"), body);
      if (final.related && final.related.length) {
        // The closest clauses still help when the refusal is wrong; they are marked as not answering.
        const rel = el("div", "related");
        rel.appendChild(el("div", "section", "相关条款（未直接回答）"));
        final.related.forEach((c) => {
          const d = el("details", "citation");
          d.appendChild(el("summary", null, "《" + c.title + "》" + c.ref));
          d.appendChild(el("blockquote", null, c.text));
          rel.appendChild(d);
        });
        msg.appendChild(rel);
      }
    }
    addTools(msg, text);
    addFeedback(msg, final.answer_id);
  } catch (e) {
    msg.classList.add("error");
    body.textContent = "出错了：" + e.message;
  } finally {
    send.disabled = false;
    msg.scrollIntoView({ block: "end" });
  }
}

document.getElementById("new-thread").addEventListener("click", () => {
  thread = [];
  log.textContent = "";
  input.focus();
});

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = input.value.trim();
  if (!q) return;
  input.value = "";
  ask(q);
});
input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
});
// 练习 view: five items from /v1/quiz; answering shows the key and the clause it comes from.
function renderQuizItem(item) {
  const card = el("div", "msg bot quiz");
  card.appendChild(el("div", "q", item.n + ". " + item.question));
  const verdict = el("div", "verdict");
  const reveal = (given) => {
    const ok = given.trim() === item.answer;
    verdict.textContent = ok ? "✓ 回答正确" : "✗ 正确答案：" + item.answer;
    verdict.className = "verdict " + (ok ? "ok" : "no");
    if (!card.querySelector("blockquote")) {
      card.appendChild(el("div", "section", "出处：" + item.ref + " · " + item.clause_id));
      card.appendChild(el("blockquote", null, item.explanation));
    }
  };
  const box = el("div", "choices");
  if (item.type === "blank") {
    const input = el("input");
    input.placeholder = "填写答案";
    const go = el("button", "check", "核对");
    go.type = "button";
    go.addEventListener("click", () => reveal(input.value));
    box.append(input, go);
  } else {
    const options = item.type === "choice" ? item.options.map((o, i) => ["ABCD"[i], "ABCD"[i] + ". " + o]) : [["正确", "正确"], ["错误", "错误"]];
    for (const [value, label] of options) {
      const b = el("button", null, label);
      b.type = "button";
      b.addEventListener("click", () => reveal(value));
      box.appendChild(b);
    }
  }
  card.append(box, verdict);
  return card;
}

document.getElementById("practice").addEventListener("click", async () => {
  try {
    const res = await fetch("/v1/quiz", { method: "POST", headers: headers(),
      body: JSON.stringify({ n: 5, seed: Math.floor(Math.random() * 100000) }) });
    const data = await res.json();
    if (!res.ok) throw new Error((data.error && data.error.message) || ("HTTP " + res.status));
    data.items.forEach((item) => log.appendChild(renderQuizItem(item)));
    log.lastChild.scrollIntoView({ block: "end" });
  } catch (e) {
    log.appendChild(el("div", "msg error", "出错了：" + e.message));
  }
});

document.querySelectorAll(".example").forEach((b) => b.addEventListener("click", () => ask(b.textContent)));
