// vitmusic listening test page: participant login, one trial at a time, answers POSTed per trial.
"use strict";

const state = { participant: null, design: null, trials: [], current: null };
const $ = (id) => document.getElementById(id);
const SCALE = ["Bad", "Poor", "Fair", "Good", "Excellent"];

function show(section) {
  for (const id of ["login", "trial", "done"]) $(id).hidden = id !== section;
}

function message(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

// one video plays at a time, so stimuli are never heard on top of each other
function pauseOthers(event) {
  for (const v of document.querySelectorAll("video")) if (v !== event.target) v.pause();
}

function makeVideo(url) {
  const v = document.createElement("video");
  v.src = url;
  v.controls = true;
  v.preload = "metadata";
  v.playsInline = true;
  v.addEventListener("play", pauseOthers);
  return v;
}

function updateSubmit() {
  const cards = [...document.querySelectorAll("#stimuli .stimulus")];
  let ready;
  if (state.design === "ab") ready = document.querySelector("input.choice:checked") !== null;
  else ready = cards.length > 0 && cards.every((c) => c.dataset.touched === "1");
  $("submit").disabled = !ready;
}

function mushraCard(stim) {
  const card = document.createElement("div");
  card.className = "card stimulus untouched";
  card.dataset.stimulusId = stim.stimulus_id;
  card.dataset.touched = "0";
  const title = document.createElement("h3");
  title.textContent = `Stimulus ${stim.position}`;
  const row = document.createElement("div");
  row.className = "rating-row";
  const slider = document.createElement("input");
  Object.assign(slider, { type: "range", min: 0, max: 100, step: 1, value: 50, className: "rating" });
  slider.setAttribute("aria-label", `rating of stimulus ${stim.position}`);
  const value = document.createElement("span");
  value.className = "rating-value";
  value.textContent = "–";
  slider.addEventListener("input", () => {
    card.dataset.touched = "1";
    card.classList.remove("untouched");
    value.textContent = slider.value;
    updateSubmit();
  });
  row.append(slider, value);
  const scale = document.createElement("div");
  scale.className = "scale";
  for (const s of SCALE) { const span = document.createElement("span"); span.textContent = s; scale.append(span); }
  card.append(title, makeVideo(stim.url), row, scale);
  return card;
}

function abCard(stim, trial) {
  const card = document.createElement("div");
  card.className = "card stimulus";
  card.dataset.stimulusId = stim.stimulus_id;
  const title = document.createElement("h3");
  title.textContent = stim.position;
  const label = document.createElement("label");
  label.className = "choice-row";
  const radio = document.createElement("input");
  Object.assign(radio, { type: "radio", name: `choice-${trial}`, value: stim.stimulus_id, className: "choice" });
  radio.addEventListener("change", updateSubmit);
  label.append(radio, ` Prefer ${stim.position}`);
  card.append(title, makeVideo(stim.url), label);
  return card;
}

function renderTrial(number) {
  const index = state.trials.findIndex((t) => t.trial === number);
  const trial = state.trials[index];
  state.current = trial;
  $("trial-title").textContent = `Trial ${index + 1} of ${state.trials.length}`;
  $("trial-title").dataset.trial = String(trial.trial);
  $("instructions").textContent = state.design === "ab"
    ? "Watch both versions. Which music fits the performance better?"
    : "Rate how closely each stimulus matches the reference (0 = bad, 100 = excellent). " +
      "One of them is the reference itself. Move every slider before you continue.";
  const refBox = $("reference-box");
  refBox.hidden = !trial.reference;
  const ref = $("reference");
  ref.removeEventListener("play", pauseOthers);
  ref.addEventListener("play", pauseOthers);
  if (trial.reference) ref.src = trial.reference; else ref.removeAttribute("src");
  const box = $("stimuli");
  box.replaceChildren(...trial.stimuli.map((s) => (state.design === "ab" ? abCard(s, trial.trial) : mushraCard(s))));
  updateSubmit();
  show("trial");
  window.scrollTo(0, 0);
}

function answers() {
  const values = {};
  for (const card of document.querySelectorAll("#stimuli .stimulus")) {
    const id = card.dataset.stimulusId;
    if (state.design === "ab") values[id] = card.querySelector("input.choice").checked ? 1 : 0;
    else values[id] = Number(card.querySelector("input.rating").value);
  }
  return values;
}

function next(number) {
  for (const v of document.querySelectorAll("video")) v.pause();
  if (number === null || number === undefined) show("done");
  else renderTrial(number);
}

async function start() {
  message("");
  const id = $("participant").value.trim();
  if (!id) { message("Please enter your participant id."); return; }
  try {
    const session = await api(`/api/session?participant=${encodeURIComponent(id)}`);
    Object.assign(state, { participant: session.participant, design: session.design, trials: session.trials });
    next(session.next_trial);
  } catch (err) {
    message(`Cannot start: ${err.message}`);
  }
}

async function submit() {
  $("submit").disabled = true;
  message("");
  try {
    const res = await api("/api/submit", {
      participant: state.participant, trial: state.current.trial, values: answers() });
    next(res.next_trial);
  } catch (err) {
    message(`Could not save your answer (${err.message}); please try again.`);
    updateSubmit();
  }
}

$("start").addEventListener("click", start);
$("participant").addEventListener("keydown", (e) => { if (e.key === "Enter") start(); });
$("submit").addEventListener("click", submit);
const preset = new URLSearchParams(window.location.search).get("participant");
if (preset) $("participant").value = preset;
