//! The console page: server-rendered HTML (maud, escaped by construction), one
//! inline stylesheet, one inline script (refresh and the forms), inline SVG
//! charts; no external assets. It renders the JSON of [`super::data`], so the
//! page shows nothing the documented endpoint does not.
//!
//! Elements the browser test (and an operator's own monitoring) can rely on:
//! `#disturbance[data-state="none"|"ongoing"]`, `#providers tr.provider[data-provider=ID]`
//! with `data-serving`, `#requests-chart`, `#service-levels`, `#suspensions`,
//! `#withdrawals`, `#planned`, `#status-feed` (`tr.component[data-component][data-status]`,
//! `tr.incident[data-incident][data-status]`, an update form per open incident).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

/// Seconds between refreshes (skipped while an operator types in a form).
const REFRESH_S: u32 = 10;

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f4f5f7}
header{background:#1f3a5f;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:baseline}
header h1{font-size:18px;margin:0}
main{padding:12px 20px;display:grid;gap:14px;grid-template-columns:minmax(0,1fr)}
section{background:#fff;border:1px solid #d8dce2;border-radius:6px;padding:10px 14px;overflow-x:auto;min-width:0}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eceef1;white-space:nowrap}
th{font-weight:600;color:#4a5564}
.ok{color:#17692b}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-weight:600}
.badge.ok{background:#dff3e4}.badge.bad{background:#fbe1df}.badge.warn{background:#fff0cc}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:8px}
.kv b{display:block;font-size:12px;color:#4a5564;font-weight:500}
form{display:inline-flex;gap:4px;margin:4px 12px 4px 0;align-items:center}
input,select,button{font:inherit;padding:2px 6px}
#result{color:#4a5564;margin-left:8px}
.legend span{margin-right:12px}
"#;

/// The script: refresh unless a form field has focus; forms post to the admin
/// API with its `X-SHS-Admin` header (a cross-site page cannot send it).
const SCRIPT: &str = r#"
setInterval(function(){var a=document.activeElement;if(!a||!a.closest||!a.closest('form'))location.reload();},REFRESH);
document.querySelectorAll('form[data-action]').forEach(function(f){
 f.addEventListener('submit',function(e){
  e.preventDefault();
  var action=(e.submitter&&e.submitter.dataset.action)||f.dataset.action;
  var q=new URLSearchParams();
  new FormData(f).forEach(function(v,k){if(v!=='')q.append(k,v);});
  fetch(action+(q.toString()?'?'+q:''),{method:'POST',headers:{'X-SHS-Admin':'console'},credentials:'same-origin'})
   .then(function(r){return r.text().then(function(t){document.getElementById('result').textContent=r.status+': '+t;if(r.ok)setTimeout(function(){location.reload();},800);});})
   .catch(function(err){document.getElementById('result').textContent='failed: '+err;});
 });
});
"#;

/// Outcomes in the chart, in stacking order, with their colours.
const OUTCOMES: &[(&str, &str)] = &[
    ("answered", "#2e7d32"),
    ("accepted", "#43a047"),
    ("fetched", "#81c784"),
    ("refused", "#f9a825"),
    ("overloaded", "#ef6c00"),
    ("failed", "#c62828"),
];

/// The whole page for one snapshot of [`super::data`].
pub fn render(data: &Value, nonce: &str) -> String {
    let relay = &data["relay"];
    let script = SCRIPT.replace("REFRESH", &(REFRESH_S * 1000).to_string());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "shs-relay console" }
                style { (PreEscaped(STYLE)) }
                noscript { meta http-equiv="refresh" content=(REFRESH_S * 3); }
            }
            body {
                header {
                    h1 { "shs-relay console" }
                    span { "as of " (text(&data["generated_at"])) " (UTC); refreshes every " (REFRESH_S) " s" }
                    nav { a href="/parties" { "Connected parties" } }
                }
                main {
                    (relay_section(relay))
                    (providers_section(&data["providers"]))
                    (service_levels_section(&data["service_levels"]))
                    (decisions_section(data))
                }
                script nonce=(nonce) { (PreEscaped(script)) }
            }
        }
    }
    .into_string()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "–".to_owned(),
        // Times to the second, in UTC.
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).map_or_else(
            |_| s.clone(),
            |t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            },
        ),
        other => other.to_string(),
    }
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "–".to_owned(), |p| format!("{p:.1} %"))
}

fn share(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "–".to_owned(), |p| format!("{:.1} %", p * 100.0))
}

fn ms(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "–".to_owned(), |m| format!("{m} ms"))
}

fn minutes_hm(v: &Value) -> String {
    v.as_u64().map_or_else(
        || "–".to_owned(),
        |m| format!("{} h {:02} min", m / 60, m % 60),
    )
}

fn met(v: &Value) -> Markup {
    match v.as_bool() {
        Some(true) => html! { span.badge.ok { "met" } },
        Some(false) => html! { span.badge.bad { "missed" } },
        None => html! { span.badge { "not measured" } },
    }
}

fn relay_section(relay: &Value) -> Markup {
    let disturbance = &relay["disturbance"];
    let ongoing = !disturbance.is_null() && disturbance != &Value::Bool(false);
    let failing: Vec<String> = relay["failing_providers"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let maintenance = relay["maintenance"].as_bool().unwrap_or(false);
    html! {
        section #relay {
            h2 { "Relay" }
            div.grid {
                div.kv #disturbance data-state=(if ongoing { "ongoing" } else { "none" }) {
                    b { "Disturbance" }
                    @if ongoing {
                        span.badge.bad { "available with disturbance" }
                        " " span.providers { (disturbance["providers"].as_array().map(|a| a.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        " since " (text(&disturbance["start"]))
                    } @else {
                        span.badge.ok { "none" }
                    }
                }
                div.kv { b { "Failing providers" } (if failing.is_empty() { "none".to_owned() } else { failing.join(", ") }) }
                div.kv #maintenance data-state=(if maintenance { "on" } else { "off" }) {
                    b { "Maintenance" }
                    @if maintenance { span.badge.warn { "on" } } @else { span.badge.ok { "off" } }
                }
                div.kv { b { "In flight" } (text(&relay["in_flight"])) }
                div.kv {
                    b { "Last probe" }
                    @if relay["last_probe"].is_null() { "none yet" } @else {
                        @let result = text(&relay["last_probe"]["result"]);
                        span class=(if result == "ok" { "ok" } else { "bad" }) { (result) }
                        " at " (text(&relay["last_probe"]["time"]))
                    }
                }
                div.kv #mailbox {
                    b { "Mailbox" }
                    @if relay["mailbox"].is_null() { "not configured" } @else {
                        (text(&relay["mailbox"]["messages"])) " messages, "
                        (text(&relay["mailbox"]["bytes"])) " bytes, oldest "
                        (text(&relay["mailbox"]["oldest_age_s"])) " s"
                    }
                }
            }
            h2 style="margin-top:10px" { "Requests per minute, last hour" }
            (requests_chart(&relay["requests_per_minute"]))
        }
    }
}

/// Stacked bars, one per minute, by outcome.
fn requests_chart(minutes: &Value) -> Markup {
    let minutes = minutes.as_array().cloned().unwrap_or_default();
    let totals: Vec<u64> = minutes
        .iter()
        .map(|m| {
            m["outcomes"]
                .as_object()
                .map_or(0, |o| o.values().filter_map(Value::as_u64).sum())
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, bar) = (720.0_f64, 120.0_f64, 12.0_f64);
    let sum: u64 = totals.iter().sum();
    // (x, y, height, colour, title) of every bar segment, stacked bottom up.
    let mut rects = Vec::new();
    for (i, m) in minutes.iter().enumerate() {
        let mut y = h;
        for (name, colour) in OUTCOMES {
            let n = m["outcomes"][*name].as_u64().unwrap_or(0);
            if n > 0 {
                let bh = n as f64 / max as f64 * (h - 4.0);
                y -= bh;
                let title = format!("{name}: {n} at {}", text(&m["minute"]));
                rects.push((i as f64 * bar, y, bh, *colour, title));
            }
        }
    }
    html! {
        svg #requests-chart xmlns="http://www.w3.org/2000/svg" width=(w) height=(h + 20.0)
            viewBox=(format!("0 0 {w} {}", h + 20.0)) role="img"
            aria-label=(format!("{sum} requests in the last hour, at most {max} a minute")) {
            line x1="0" y1=(h) x2=(w) y2=(h) stroke="#999" {}
            @for (x, y, bh, colour, title) in &rects {
                rect x=(x + 1.0) y=(y) width=(bar - 2.0) height=(bh) fill=(colour) { title { (title) } }
            }
            text x="0" y=(h + 15.0) font-size="11" fill="#4a5564" { "−60 min" }
            text x=(w - 30.0) y=(h + 15.0) font-size="11" fill="#4a5564" { "now" }
            text x=(w / 2.0 - 40.0) y=(h + 15.0) font-size="11" fill="#4a5564" { "max " (max) "/min" }
        }
        div.legend {
            @for (name, colour) in OUTCOMES {
                span { svg width="10" height="10" { rect width="10" height="10" fill=(colour) {} } " " (name) }
            }
        }
    }
}

fn providers_section(providers: &Value) -> Markup {
    let empty = Vec::new();
    let rows = providers.as_array().unwrap_or(&empty);
    html! {
        section {
            h2 { "Providers" }
            table #providers {
                thead { tr {
                    th { "Provider" } th { "Health" } th { "Contract" } th { "Adapter" }
                    th { "Calls 5 min" } th { "Errors 5 min" } th { "Calls 60 min" } th { "Errors 60 min" }
                    th { "p50 / p90 (60 min)" } th { "Last error" } th { "Replicas" }
                } }
                tbody {
                    @for p in rows {
                        @let serving = p["serving"].as_bool().unwrap_or(false);
                        @let contract = text(&p["contract"]["state"]);
                        tr.provider data-provider=(text(&p["id"])) data-serving=(serving) {
                            td { b { (text(&p["id"])) } " " (text(&p["display_name"])) }
                            td { @if serving { span.ok { "SERVING" } } @else { span.bad { "NOT SERVING" } } }
                            td class=(if contract == "incompatible" { "bad" } else { "" }) {
                                (text(&p["contract_version"])) " (" (contract) ")"
                            }
                            td { (text(&p["adapter_version"])) }
                            td { (text(&p["recent"]["last_5_min"]["calls"])) }
                            td { (share(&p["recent"]["last_5_min"]["error_share"])) }
                            td { (text(&p["recent"]["last_60_min"]["calls"])) }
                            td { (share(&p["recent"]["last_60_min"]["error_share"])) }
                            td { (ms(&p["recent"]["last_60_min"]["p50_ms"])) " / " (ms(&p["recent"]["last_60_min"]["p90_ms"])) }
                            td {
                                @if p["recent"]["last_error"].is_null() { "none" } @else {
                                    span.warn { (text(&p["recent"]["last_error"]["outcome"])) }
                                    " at " (text(&p["recent"]["last_error"]["at"]))
                                }
                            }
                            td { (p["endpoints"].as_array().map_or(1, Vec::len)) }
                        }
                    }
                }
            }
        }
    }
}

fn service_levels_section(sl: &Value) -> Markup {
    html! {
        section #service-levels {
            h2 { "Service levels, month to date" }
            @if sl["available"].as_bool() != Some(true) {
                p { (text(&sl["reason"])) }
            } @else {
                @let a = &sl["answered_share"];
                @let t = &sl["answer_times"];
                @let av = &sl["availability"];
                @let r = &sl["reliability"];
                p { (text(&sl["month"])) ", up to " (text(&sl["period_end"])) "; "
                    (text(&sl["requests"]["in_opening_hours"])) " requests in opening hours, "
                    (text(&sl["incidents"])) " disturbance periods" }
                table {
                    thead { tr { th { "Figure" } th { "Now" } th { "Target" } th { "" } } }
                    tbody {
                        tr { td { "Calls answered (" (text(&a["basis"])) ")" }
                             td { (percent(&a["answered_percent"])) " (complete " (percent(&a["complete_percent"])) ")" }
                             td { "≥ " (percent(&a["target_percent"])) } td { (met(&a["met"])) } }
                        tr { td { "Answered within 7 s (+1.5 s per extra person)" }
                             td { (percent(&t["fast_percent"])) } td { "≥ " (percent(&t["fast_target_percent"])) } td { (met(&t["fast_met"])) } }
                        tr { td { "Answered within 12 s" }
                             td { (percent(&t["slow_percent"])) } td { "≥ " (percent(&t["slow_target_percent"])) } td { (met(&t["slow_met"])) } }
                        tr { td { "Availability in opening hours" }
                             td { (percent(&av["percent"])) ", down " (minutes_hm(&av["unavailable_minutes"])) }
                             td { "≥ " (percent(&av["target_percent"])) } td { (met(&av["met"])) } }
                        tr { td { "Unplanned outages this month" }
                             td { (text(&r["unplanned_outages_month"])) } td { "≤ " (text(&r["max_per_month"])) }
                             td { (met(&r["month_met"])) } }
                        tr { td { "Unplanned outages this year" }
                             td { (text(&r["unplanned_outages_year"])) } td { "≤ " (text(&r["max_per_year"])) }
                             td { (met(&r["year_met"])) } }
                        tr { td { "Down time this year" }
                             td { (minutes_hm(&r["down_minutes_year"])) } td { "≤ " (minutes_hm(&r["max_down_minutes_year"])) }
                             td { (met(&r["down_met"])) } }
                    }
                }
            }
        }
    }
}

fn decisions_section(data: &Value) -> Markup {
    let empty = Vec::new();
    let list = |k: &str| data[k].as_array().unwrap_or(&empty).clone();
    let providers: Vec<String> = data["providers"]
        .as_array()
        .map(|a| a.iter().map(|p| text(&p["id"])).collect())
        .unwrap_or_default();
    html! {
        section #status-feed {
            h2 { "Status feed for connected parties (/status/v1/summary.json): "
                 (text(&data["status_feed"]["status"]["indicator"])) }
            table #components {
                thead { tr { th { "Component" } th { "Status" } th { "Since" } th { "Last success" } th { "Last failure" } } }
                tbody { @for c in data["status_feed"]["components"].as_array().unwrap_or(&empty).iter() {
                    tr.component data-component=(text(&c["id"])) data-status=(text(&c["status"])) {
                        td { (text(&c["name"])) } td { (text(&c["status"])) } td { (text(&c["updated_at"])) }
                        td { (text(&c["last_success_at"])) } td { (text(&c["last_failure_at"])) }
                    }
                } }
            }
            h2 { "Incidents" }
            table #incidents {
                thead { tr { th { "Started" } th { "Name" } th { "Status" } th { "Impact" } th { "Latest update" } th { "Update" } } }
                tbody { @for i in list("incidents") {
                    tr.incident data-incident=(text(&i["id"])) data-status=(text(&i["status"])) {
                        td { (text(&i["started_at"])) } td { (text(&i["name"])) } td { (text(&i["status"])) }
                        td { (text(&i["impact"])) } td { (text(&i["updates"][0]["text"]["en"])) }
                        td { @if i["resolved_at"].is_null() {
                            form data-action=(format!("/admin/incidents/{}/update", text(&i["id"]))) {
                                select name="status" {
                                    option value="" { "(keep status)" }
                                    @for s in ["investigating", "identified", "monitoring", "resolved"] { option value=(s) { (s) } }
                                }
                                input name="text_sv" placeholder="text (svenska)";
                                input name="text_en" placeholder="text (English)";
                                button type="submit" { "Update" }
                            }
                        } }
                    }
                } }
            }
            form data-action="/admin/incidents" {
                input name="name_en" placeholder="new incident: name" required;
                input name="components" placeholder="components (ssbtek-skv,elt-fk)";
                select name="impact" { @for s in ["minor", "major", "critical", "none"] { option value=(s) { (s) } } }
                input name="text_en" placeholder="first update" required;
                button type="submit" { "Open incident" }
            }
        }
        section #decisions {
            h2 { "Operator decisions" span #result {} }
            h2 { "Suspended callers" }
            table #suspensions {
                thead { tr { th { "Organisation" } th { "Product" } } }
                tbody { @for s in list("suspensions") {
                    tr.suspension data-org=(text(&s["org"])) { td { (text(&s["org"])) } td { (text(&s["product"])) } }
                } }
            }
            form data-action="/admin/suspend" {
                input name="org" placeholder="organisationsnummer" required pattern="[0-9-]{10,13}";
                input name="product" placeholder="product (empty: all)";
                button type="submit" { "Suspend" }
                button type="submit" data-action="/admin/resume" { "Resume" }
            }
            h2 { "Withdrawn municipalities (per provider)" }
            table #withdrawals {
                thead { tr { th { "Provider" } th { "Municipality" } } }
                tbody { @for w in list("withdrawals") {
                    tr.withdrawal { td { (text(&w["provider"])) } td { (text(&w["org"])) } }
                } }
            }
            form data-action="/admin/withdraw" {
                select name="provider" { @for p in &providers { option value=(p) { (p) } } }
                input name="org" placeholder="municipality's organisationsnummer" required pattern="[0-9-]{10,13}";
                button type="submit" { "Withdraw" }
                button type="submit" data-action="/admin/restore" { "Restore" }
            }
            h2 { "Maintenance" }
            form data-action="/admin/maintenance/on" {
                button type="submit" { "Maintenance on" }
                button type="submit" data-action="/admin/maintenance/off" { "Maintenance off" }
            }
            table #planned {
                thead { tr { th { "Planned window start" } th { "End" } th { "Reason" } th { "Source" } } }
                tbody { @for w in list("planned_maintenance") {
                    tr.planned { td { (text(&w["start"])) } td { (text(&w["end"])) } td { (text(&w["reason"])) } td { (text(&w["source"])) } }
                } }
            }
            form data-action="/admin/maintenance/plan" {
                input name="start" placeholder="start, RFC 3339" required;
                input name="end" placeholder="end, RFC 3339" required;
                input name="reason" placeholder="reason";
                button type="submit" { "Announce window" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_escapes_what_it_shows_and_carries_the_nonce() {
        let data = json!({
            "generated_at": "2026-12-02T10:00:00Z",
            "relay": {"disturbance": {"providers": ["CSN", "TNS"], "start": "x"}, "maintenance": false,
                      "requests_per_minute": [{"minute": "m", "outcomes": {"answered": 3, "failed": 1}}]},
            "providers": [{"id": "CSN", "serving": false, "display_name": "<script>alert(1)</script>",
                           "contract": {"state": "compatible"}, "recent": {}}],
            "service_levels": {"available": false, "reason": "none"},
            "suspensions": [{"org": "2120000142", "product": "all"}],
            "withdrawals": [], "planned_maintenance": [],
        });
        let page = render(&data, "abc123");
        assert!(!page.contains("<script>alert(1)"), "text is escaped");
        assert!(page.contains("&lt;script&gt;alert(1)"));
        assert!(page.contains(r#"<script nonce="abc123">"#));
        assert!(page.contains(r#"id="disturbance" data-state="ongoing""#));
        assert!(page.contains(r#"data-provider="CSN" data-serving="false""#));
        assert!(page.contains(r#"data-org="2120000142""#));
        assert!(page.contains("<rect"), "the chart has bars");
    }
}
