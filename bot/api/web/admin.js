// The admin page: logged questions with filters, and one-click labels (PUT /v1/admin/labels/{id}).
// The browser sends the admin key it was asked for when it opened /admin (HTTP Basic).
"use strict";
const items = document.getElementById("items");
const more = document.getElementById("more");
const filters = document.getElementById("filters");
const VERDICTS = { correct: "回答正确", wrong: "回答错了", not_in_documents: "不在文件中" };
let show = "all";
let cursor = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function named(n) {
  return n ? `《${n.title}》${n.ref ? " " + n.ref + "：" + n.words : ""}` : "";
}

async function api(path, options) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

function query() {
  const p = new URLSearchParams({ limit: "30" });
  if (show === "unanswered") p.set("found", "false");
  if (show === "down") p.set("rating", "down");
  const doc = document.getElementById("doc").value;
  if (doc) p.set("doc", doc);
  for (const id of ["since", "until"]) {
    const v = document.getElementById(id).value;
    if (v) p.set(id, new Date(v).toISOString());
  }
  if (cursor) p.set("cursor", cursor);
  return p;
}

async function load(append) {
  if (!append) { cursor = null; items.replaceChildren(); }
  const page = await api("/v1/admin/questions?" + query());
  if (!append && !page.items.length) items.append(el("p", "empty", "没有符合条件的问题。"));
  page.items.forEach((item) => items.append(render(item)));
  cursor = page.next;
  more.hidden = !cursor;
  const report = document.getElementById("report-link");
  const span = new URLSearchParams();
  for (const id of ["since", "until"]) {
    const v = document.getElementById(id).value;
    if (v) span.set(id, new Date(v).toISOString());
  }
  report.href = "/admin/report" + (span.toString() ? "?" + span : "");
}

function labelText(label) {
  if (!label) return "未标注";
  const by = label.admin_name || "管理员";
  const clause = label.clause ? "，正确条款：" + named(label.clause) : "";
  return `已标注：${VERDICTS[label.verdict]}${clause}（${by}，${new Date(label.updated).toLocaleString("zh-CN")}）`;
}

function render(item) {
  const box = el("article", "item");
  box.dataset.id = item.id;
  box.append(el("div", "meta", `${new Date(item.time).toLocaleString("zh-CN")} · ${item.found ? "找到答案" : "未找到答案"}`));
  box.append(el("div", "question", item.question));
  if (item.resolved_question) box.append(el("div", "meta", `按「${item.resolved_question}」理解`));
  const given = el("div", "given");
  if (item.found) {
    given.append(el("span", "meta", "当时的回答引用："));
    const list = el("ol");
    item.citations.forEach((c) => list.append(el("li", null, named(c.name))));
    given.append(list);
  } else {
    given.append(el("span", "meta", "未找到答案" + (item.related.length ? "；下面是当时列出的相关条款（未直接回答），正确的一条可直接选中" : "")));
  }
  box.append(given);
  item.feedback.filter((f) => f.rating === "down").forEach((f) => box.append(el("div", "comment", "👎 " + (f.comment || "（没有写意见）"))));
  const state = el("div", "label-state", labelText(item.label));
  const actions = el("div", "actions");
  const send = async (verdict, clauseId) => {
    try {
      const label = await api(`/v1/admin/labels/${item.id}`, { method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ verdict, clause_id: clauseId || null }) });
      item.label = label;
      state.textContent = labelText(label);
      if (item.found) box.querySelector(".picker")?.remove();
    } catch (e) { state.textContent = "未能保存：" + e.message; }
  };
  const button = (text, cls, onClick) => {
    const b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", onClick);
    actions.append(b);
  };
  button(item.found ? "✓ 回答正确" : "✓ 确实不在文件中", "correct", () => send(item.found ? "correct" : "not_in_documents"));
  button("✗ 回答错了，正确条款是…", "wrong", () => pick(box, item, send));
  if (item.found) button("不在文件中", "absent", () => send("not_in_documents"));
  box.append(actions, state);
  if (!item.found && item.related.length) pick(box, item, send, true);
  return box;
}

// The clause search inside the page: starts with the question itself (and, for a not-found answer,
// the clauses shown then); one click on a result saves the label.
function pick(box, item, send, closestOnly) {
  let picker = box.querySelector(".picker");
  if (picker && !closestOnly) { picker.querySelector("input").select(); return; }
  if (!picker) {
    picker = el("div", "picker");
    const search = el("input");
    search.type = "search";
    search.placeholder = "搜索条款：输入关键词";
    search.value = item.resolved_question || item.question;
    const results = el("ol", "results");
    const run = async () => {
      const found = await api("/v1/admin/clauses?" + new URLSearchParams({ q: search.value, limit: "6" }));
      show_(found.map((c) => ({ clause_id: c.clause_id, name: c })));
    };
    const show_ = (clauses) => {
      results.replaceChildren();
      clauses.forEach((c) => {
        const li = el("li", null, named(c.name));
        const choose = el("button", "choose", "选这条");
        choose.type = "button";
        choose.addEventListener("click", () => send("wrong", c.clause_id));
        li.append(choose);
        results.append(li);
      });
    };
    // Results follow the typing (no button to press): find the clause, pick it.
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 250); });
    search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(timer); run(); } });
    picker.append(search, results);
    box.append(picker);
    picker.run = run;
    picker.show = show_;
  }
  if (closestOnly) picker.show(item.related);
  else { picker.run(); picker.querySelector("input").select(); }
}

filters.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-show]");
  if (!b) return;
  show = b.dataset.show;
  filters.querySelectorAll("button[data-show]").forEach((x) => x.classList.toggle("on", x === b));
  load(false);
});
filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
document.getElementById("doc").addEventListener("change", () => load(false));
more.addEventListener("click", () => load(true));
load(false);
