"use strict";
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("coordinatorKey") || "";
$("key").value = key;

function say(text, isError) {
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || data.title || response.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function actions(task) {
  const box = el("div", { class: "actions" });
  const act = (label, path, body, primary) =>
    el("button", { class: primary ? "primary" : "", "data-action": label.toLowerCase(), onclick: () => run(task, path, body) }, label);
  if (task.status === "queued" || task.status === "unroutable") box.append(act("Claim", "claim", undefined, true));
  if (task.status === "claimed" || task.status === "accepted" || task.status === "scheduled") {
    const at = el("input", { type: "datetime-local", "data-field": "appointment_at", "aria-label": "Appointment time" });
    box.append(at, el("button", { "data-action": "schedule", onclick: () => {
      if (!at.value) return say("Choose the appointment time first.", true);
      run(task, "schedule", { appointment_at: new Date(at.value).toISOString() });
    } }, "Schedule"));
  }
  if (["queued", "claimed", "accepted"].includes(task.status) && task.clinic_id) {
    const reason = el("input", { placeholder: "reason", size: 12, "data-field": "reason", "aria-label": "Why the clinic declined" });
    box.append(reason, el("button", { "data-action": "decline", onclick: () => {
      if (!reason.value.trim()) return say("Say why the clinic declined.", true);
      run(task, "decline", { reason: reason.value });
    } }, "Decline"));
  }
  if (task.status === "scheduled") box.append(act("Complete", "complete", undefined, true));
  return box;
}

function row(task) {
  const urgency = el("td", {}, el("span", { class: "urgency " + task.urgency }, task.urgency));
  if (task.escalated) urgency.append(el("span", { class: "urgency escalated", title: "waited past its limit" }, "escalated"));
  const clinic = task.clinic
    ? el("td", {}, task.clinic.name, el("div", { class: "muted" }, task.clinic.region))
    : el("td", {}, el("span", { class: "missing" }, "no clinic fits"),
        task.unroutable_reason ? el("div", { class: "missing" }, task.unroutable_reason) : null);
  const status = el("td", {}, el("span", { class: "status", "data-status": task.status }, task.status),
    task.lease_until && task.status === "claimed" ? el("div", { class: "muted" }, "lease until " + when(task.lease_until)) : null,
    task.appointment_at ? el("div", { class: "muted" }, "appointment " + when(task.appointment_at)) : null);
  return el("tr", { "data-task": task.id, class: task.escalated ? "is-escalated" : "" },
    urgency,
    el("td", {}, el("code", {}, task.patient_id.slice(0, 8)), el("div", { class: "muted" }, task.capabilities.join(", "))),
    el("td", {}, el("ul", { class: "reasons" }, ...task.reasons.map((r) => el("li", {}, r)))),
    clinic, status, el("td", {}, actions(task)));
}

async function run(task, action, body) {
  try {
    const updated = await api("POST", `/v1/tasks/${task.id}/${action}`, body);
    say(`${action}: task now ${updated.status}.`);
  } catch (error) {
    say(`${action} failed: ${error.message}`, true);
  }
  await refresh();
}

async function refresh() {
  if (!key) return;
  const params = new URLSearchParams({ status: $("status").value });
  if ($("region").value.trim()) params.set("region", $("region").value.trim());
  try {
    const tasks = await api("GET", "/v1/tasks?" + params);
    const body = $("tasks");
    body.replaceChildren(...(tasks.length ? tasks.map(row) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing waiting."))]));
    document.body.dataset.loaded = "true";
  } catch (error) {
    say("Could not load the queue: " + error.message, true);
  }
}

$("save-key").addEventListener("click", () => {
  key = $("key").value.trim();
  sessionStorage.setItem("coordinatorKey", key);
  say("");
  refresh();
});
$("status").addEventListener("change", refresh);
$("region").addEventListener("change", refresh);
setInterval(refresh, 15000);
refresh();
