// The simulator page: pick a user, send text/taps, render replies and pushes (polled).
"use strict";

const state = { user: null, after: 0, polling: null, busy: false };
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const opts = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
  const res = await fetch("/simulator/api/" + path, opts);
  return res.json();
}

async function loadUsers() {
  const users = await api("users");
  const list = $("users");
  const picker = $("user-select");  // the same list, in the chat's head at phone width
  users.forEach((u, i) => {
    const li = el("li", "", u.name);
    li.dataset.userId = u.userId;
    li.dataset.testid = "user-" + i;
    li.appendChild(el("span", "note", u.note));
    li.addEventListener("click", () => selectUser(u, li));
    list.appendChild(li);
    const option = el("option", "", u.name);
    option.value = String(i);
    picker.appendChild(option);
    if (i === 0) selectUser(u, li);
  });
  picker.addEventListener("change", () => {
    const i = Number(picker.value);
    selectUser(users[i], list.children[i]);
  });
}

function showTools(open) {  // the user list and tools, over the chat at phone width
  $("side").classList.toggle("open", open);
  $("tools-toggle").setAttribute("aria-expanded", String(open));
  $("tools-toggle").textContent = open ? "閉じる" : "操作";
}

function selectUser(user, li) {
  showTools(false);
  document.querySelectorAll(".users li").forEach((x) => x.classList.remove("active"));
  li.classList.add("active");
  $("user-select").value = String(Array.prototype.indexOf.call(li.parentNode.children, li));
  state.user = user.userId;
  state.after = 0;
  $("messages").innerHTML = "";
  $("quick").innerHTML = "";
  $("chat-title").textContent = "セミナー案内ボット (" + user.name + " として)";
  addSystem(user.name + " として話しかけます。「ヘルプ」と送るか、下のメニューを押してください。");
  poll();
}

async function send(payload) {
  if (!state.user) return;
  showTools(false);  // what was sent is answered in the chat: show it
  state.busy = true;
  try {
    const res = await api("send", Object.assign({ user: state.user }, payload));
    if (res.status !== 200) addSystem("Webhook の応答: " + res.status);
  } finally {
    state.busy = false;
    await poll();
  }
}

function runAction(action) {
  if (!action) return;
  if (action.type === "message") send({ kind: "text", text: action.text });
  else if (action.type === "postback") send({ kind: "postback", data: action.data, displayText: action.displayText || "" });
  else if (action.type === "uri") window.open(action.uri, "_blank", "noopener");
  else if (action.type === "location") $("lat").focus();
}

function addSystem(text) {
  const row = el("div", "row system");
  row.appendChild(el("div", "bubble-text", text));
  $("messages").appendChild(row);
}

function renderText(msg, side) {
  const row = el("div", "row " + side);
  const bubble = el("div", "bubble-text", msg.text);
  bubble.dataset.testid = side === "bot" ? "bot-text" : "user-text";
  row.appendChild(bubble);
  return row;
}

function renderFlexComponent(c) {
  if (c.type === "box") {
    const box = el("div", "flex-box " + (c.layout || "vertical"));
    (c.contents || []).forEach((x) => box.appendChild(renderFlexComponent(x)));
    return box;
  }
  if (c.type === "text") {
    const t = el("div", "flex-text" + (c.weight === "bold" ? " bold" : ""), c.text || "");
    if (c.color) t.style.color = c.color;
    return t;
  }
  if (c.type === "button") {
    const b = el("button", "flex-button " + (c.style || "link"), c.action && c.action.label);
    b.type = "button";
    b.dataset.testid = "flex-button";
    b.addEventListener("click", () => runAction(c.action));
    return b;
  }
  if (c.type === "image") {
    const img = el("img");
    img.src = c.url;
    img.style.width = "100%";
    return img;
  }
  if (c.type === "separator") return el("hr");
  return el("div", "", "");
}

function renderBubble(b) {
  const card = el("div", "flex-bubble");
  card.dataset.testid = "flex-bubble";
  ["header", "hero", "body", "footer"].forEach((part) => {
    if (!b[part]) return;
    const section = el("div", "flex-section");
    section.appendChild(renderFlexComponent(b[part]));
    card.appendChild(section);
  });
  return card;
}

function renderFlex(msg) {
  const row = el("div", "row bot");
  const contents = msg.contents || {};
  if (contents.type === "carousel") {
    const car = el("div", "carousel");
    car.dataset.testid = "carousel";
    (contents.contents || []).forEach((b) => car.appendChild(renderBubble(b)));
    row.appendChild(car);
  } else {
    row.appendChild(renderBubble(contents));
  }
  return row;
}

function renderQuick(msg) {
  const bar = $("quick");
  bar.innerHTML = "";
  const items = (msg.quickReply && msg.quickReply.items) || [];
  items.forEach((item) => {
    const b = el("button", "", item.action.label);
    b.type = "button";
    b.dataset.testid = "quick-reply";
    b.addEventListener("click", () => { bar.innerHTML = ""; runAction(item.action); });
    bar.appendChild(b);
  });
}

function renderEntry(entry) {
  const box = $("messages");
  if (entry.direction === "user") {
    if (entry.kind === "system") addSystem(entry.payload);
    else box.appendChild(renderText({ text: entry.payload }, "user"));
    $("quick").innerHTML = "";
    return;
  }
  entry.payload.forEach((msg) => {
    let node;
    if (msg.type === "text") node = renderText(msg, "bot");
    else if (msg.type === "flex") node = renderFlex(msg);
    else node = renderText({ text: "[" + msg.type + "]" }, "bot");
    if (entry.kind === "push") node.appendChild(el("span", "pushed", "プッシュ"));
    box.appendChild(node);
  });
  renderQuick(entry.payload[entry.payload.length - 1] || {});
}

function renderViolations(list, validation) {
  $("validating").textContent = validation.startsWith("LINE OpenAPI")
    ? "送信されたメッセージを LINE の messaging-api.yml で検証しています。"
    : "messaging-api.yml が見つからないため、line-bot-sdk のリクエストモデルと文字数の上限で検証しています。";
  const ul = $("violations");
  ul.innerHTML = "";
  if (!list.length) { ul.appendChild(el("li", "ok", "違反はありません")); return; }
  list.forEach((v) => ul.appendChild(el("li", "", v.endpoint + ": " + v.problems.join("\n"))));
}

async function poll() {
  if (!state.user) return;
  const user = state.user;
  const data = await api("history?user=" + encodeURIComponent(user) + "&after=" + state.after);
  if (user !== state.user) return;
  data.entries.forEach((e) => { if (e.seq > state.after) { renderEntry(e); state.after = e.seq; } });
  if (data.entries.length) $("messages").scrollTop = $("messages").scrollHeight;
  renderViolations(data.violations, data.validation);
}

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  $("text").value = "";
  send({ kind: "text", text: text });
});
$("place").addEventListener("change", () => {
  const [lat, lng] = $("place").value.split(",");
  $("lat").value = lat; $("lng").value = lng;
});
$("location").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!$("lat").value) $("place").dispatchEvent(new Event("change"));
  const latitude = parseFloat($("lat").value), longitude = parseFloat($("lng").value);
  if (isNaN(latitude) || isNaN(longitude)) { addSystem("緯度と経度を数字で入れてください"); return; }
  send({ kind: "location", latitude: latitude, longitude: longitude });
});
$("tools-toggle").addEventListener("click", () => showTools(!$("side").classList.contains("open")));
$("follow").addEventListener("click", () => send({ kind: "follow" }));
$("unfollow").addEventListener("click", () => send({ kind: "unfollow" }));

async function loadRichMenu() {
  const menu = await api("richmenu");
  if (!menu.richMenuId) return;
  const body = $("richmenu-body");
  body.innerHTML = "";
  const img = el("img");
  img.src = menu.image;
  img.alt = menu.chatBarText;
  body.appendChild(img);
  menu.areas.forEach((area) => {
    const b = area.bounds;
    const btn = el("button", "richmenu-area");
    btn.type = "button";
    btn.title = area.action.label || area.action.text || "";
    btn.dataset.testid = "richmenu-area";
    btn.style.left = (100 * b.x / menu.size.width) + "%";
    btn.style.top = (100 * b.y / menu.size.height) + "%";
    btn.style.width = (100 * b.width / menu.size.width) + "%";
    btn.style.height = (100 * b.height / menu.size.height) + "%";
    btn.addEventListener("click", () => runAction(area.action));
    body.appendChild(btn);
  });
  $("richmenu-bar").textContent = menu.chatBarText + " ▾";
  $("richmenu-bar").onclick = () => { body.hidden = !body.hidden; };
  $("richmenu").hidden = false;
}

loadUsers();
loadRichMenu();
state.polling = setInterval(() => { if (!state.busy) poll(); }, 1000);
