//! `examples/observability`: the Prometheus scrape configuration and alerting rules pass
//! `promtool`, the Grafana dashboard is importable JSON whose queries Prometheus's own parser
//! accepts, and every metric named in a query or a rule is one the provider or the dev hub
//! serves.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use arbv_provider::{action, provider};
use arbv_tests::promtool::{Promtool, assert_passed};
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde::Deserialize;
use serde_json::Value;

/// A provider with a rate limit, so that the rate-limit decisions are served too.
struct Limited;

#[provider(name = "limited")]
impl Limited {
    #[action(rate_limit = "1/s")]
    async fn ping(&self) -> Value {
        serde_json::json!({})
    }
}

/// Every metric the queries and rules may name, as a provider and a dev hub serve them: read
/// from what they render (every series of ours exists from start), so a renamed metric fails
/// here. Histograms' `_bucket`, `_sum` and `_count` series are named by their family.
fn known_metrics() -> &'static BTreeSet<String> {
    static KNOWN: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let config = arbv_provider::Config::builder()
            .auth_token("unused")
            .build()
            .unwrap();
        let provider = arbv_provider::Runtime::new(Limited, config)
            .expect("the provider compiles")
            .metrics()
            .render();
        // A queue's depth is served for each provider a task was queued for.
        let hub = arbv_provider::dev_hub::DevHub::builder().build();
        hub.enqueue("limited", "ping", serde_json::json!({}), None);
        let hub = hub.metrics();
        let mut known: BTreeSet<String> = [provider, hub]
            .iter()
            .flat_map(|text| text.lines())
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        // Prometheus's own, for every target.
        known.insert("up".to_owned());
        known
    })
}

/// Grafana's interval variables, which PromQL cannot parse, and a duration that stands in.
const GRAFANA_INTERVALS: &[&str] = &["$__rate_interval", "$__interval", "$__range"];

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/observability")
}

fn read(file: &str) -> String {
    let path = folder().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The name a metric is served under: a histogram's series suffixes stripped.
fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| {
            name.strip_suffix(suffix)
                .filter(|base| known_metrics().contains(*base))
        })
        .unwrap_or(name)
}

fn is_known(name: &str) -> bool {
    let name = family(name);
    known_metrics().contains(name)
}

/// The metric names of every selector in `expr`; a selector without a name is refused, since
/// it could match any metric.
struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let name = selector
            .name
            .clone()
            .ok_or_else(|| format!("a selector without a metric name: {selector}"))?;
        self.0.insert(name);
        Ok(true)
    }
}

/// Parses `query` with PromQL's parser and returns the metric names it selects.
#[track_caller]
fn metric_names(query: &str) -> BTreeSet<String> {
    let expr = parser::parse(query).unwrap_or_else(|e| panic!("not PromQL: {query}\n{e}"));
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &expr).unwrap_or_else(|e| panic!("{query}: {e}"));
    names.0
}

#[track_caller]
fn assert_all_known(source: &str, queries: &[String]) {
    let mut used = BTreeSet::new();
    for query in queries {
        used.extend(metric_names(query));
    }
    let unknown: Vec<&String> = used.iter().filter(|name| !is_known(name)).collect();
    assert!(
        unknown.is_empty(),
        "{source} names metrics nothing serves: {unknown:?} (known: what a provider and a dev hub render)"
    );
}

/// A Grafana query with its variables made PromQL: intervals become `5m`; `$provider` and
/// the like only stand inside label matchers' strings, where they parse as they are.
fn as_promql(query: &str) -> String {
    GRAFANA_INTERVALS
        .iter()
        .fold(query.to_owned(), |q, var| q.replace(var, "5m"))
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[test]
fn the_alerting_rules_pass_promtool_and_name_only_served_metrics() {
    let rules: RuleFile = serde_norway::from_str(&read("alerts.yml")).expect("alerts.yml is YAML");
    let rules: Vec<Rule> = rules.groups.into_iter().flat_map(|g| g.rules).collect();
    let names: BTreeSet<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    for expected in [
        "ArbvProviderDown",
        "ArbvProviderNotReady",
        "ArbvHubDisconnected",
        "ArbvTaskErrorRatioHigh",
        "ArbvTasksTimingOut",
        "ArbvResultsLost",
        "ArbvTaskDurationP99High",
    ] {
        assert!(names.contains(expected), "no alert {expected} in {names:?}");
    }
    for rule in &rules {
        assert!(
            ["warning", "critical"].contains(&rule.labels.get("severity").map_or("", |s| s)),
            "{}: severity warning or critical",
            rule.alert
        );
        assert!(
            rule.annotations.contains_key("summary"),
            "{}: a summary",
            rule.alert
        );
    }
    let exprs: Vec<String> = rules.iter().map(|r| r.expr.clone()).collect();
    assert_all_known("alerts.yml", &exprs);

    if let Some(promtool) = Promtool::find() {
        assert_passed(
            "alerts.yml",
            &promtool.check_rules(&folder().join("alerts.yml")),
        );
    }
}

/// A scrape configuration of `examples/observability`, as YAML.
fn scrape_config(file: &str) -> serde_norway::Value {
    serde_norway::from_str(&read(file)).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

/// The job named `name` of `config`.
fn job<'a>(config: &'a serde_norway::Value, name: &str) -> &'a serde_norway::Value {
    config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .find(|j| j["job_name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no job {name}"))
}

#[test]
fn the_scrape_configuration_passes_promtool_as_it_is_and_has_its_jobs() {
    let config = scrape_config("prometheus.yml");
    let targets = |name: &str| -> Vec<String> {
        job(&config, name)["static_configs"][0]["targets"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: static targets"))
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        targets("arbv-providers")
            .iter()
            .all(|t| t.ends_with(":9464")),
        "providers on :9464"
    );
    assert_eq!(
        targets("arbv-dev-hub"),
        ["localhost:50080"],
        "`arbv hub`'s admin API"
    );
    assert_eq!(config["rule_files"][0].as_str(), Some("alerts.yml"));
    if let Some(promtool) = Promtool::find() {
        assert_passed(
            "prometheus.yml",
            &promtool.check_config(&folder().join("prometheus.yml")),
        );
    }
}

#[test]
fn the_kubernetes_configuration_keeps_annotated_pods_and_passes_promtool() {
    let config = scrape_config("prometheus-kubernetes.yml");
    let pods = job(&config, "kubernetes-pods");
    assert_eq!(
        pods["kubernetes_sd_configs"][0]["role"].as_str(),
        Some("pod")
    );
    let keep = &pods["relabel_configs"][0];
    assert_eq!(
        (
            keep["action"].as_str(),
            keep["regex"].as_str(),
            keep["source_labels"][0].as_str()
        ),
        (
            Some("keep"),
            Some("true"),
            Some("__meta_kubernetes_pod_annotation_prometheus_io_scrape")
        ),
        "the first relabelling keeps only pods annotated prometheus.io/scrape"
    );
    assert_eq!(config["rule_files"][0].as_str(), Some("alerts.yml"));

    let Some(promtool) = Promtool::find() else {
        return;
    };
    let file = folder().join("prometheus-kubernetes.yml");
    let out = promtool.check_config(&file);
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !said.contains("field kubernetes_sd_configs not found") {
        assert_passed("prometheus-kubernetes.yml", &out);
        return;
    }
    // This promtool was built without Kubernetes discovery (Debian's is). The rest, the pod
    // job's relabelling included, is still checked: with static targets in its place.
    let _ = writeln!(
        std::io::stderr().lock(),
        "NOTE {}: this promtool has no Kubernetes discovery; the job kubernetes-pods is \
         checked with a static target in place of kubernetes_sd_configs",
        std::thread::current().name().unwrap_or("a test")
    );
    let mut config = config;
    for job in config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs")
    {
        let job = job.as_mapping_mut().expect("a job is a mapping");
        if job.remove("kubernetes_sd_configs").is_some() {
            job.insert(
                "static_configs".into(),
                serde_norway::from_str("[{targets: ['pod.example:9464']}]").unwrap(),
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus-kubernetes.yml"),
        serde_norway::to_string(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(folder().join("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
    assert_passed(
        "prometheus-kubernetes.yml (its Kubernetes discovery left out)",
        &promtool.check_config(&dir.path().join("prometheus-kubernetes.yml")),
    );
}

/// Every panel of the dashboard, those inside collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner);
        }
    }
    all
}

#[test]
fn the_dashboard_is_importable_and_queries_only_served_metrics() {
    let dashboard: Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    assert!(dashboard["schemaVersion"].is_u64());

    // The data source is chosen at import: a variable, which every panel and query uses.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("template variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    let mut queries = Vec::new();
    for name in ["provider", "action"] {
        let query = variable(name)["query"]["query"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: a query"));
        let (metric, label) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
            .unwrap_or_else(|| panic!("{name}: label_values(metric, label), not {query}"));
        assert_eq!(label.trim(), name);
        queries.push(as_promql(metric));
    }

    let with_queries: Vec<&Value> = panels(&dashboard)
        .into_iter()
        .filter(|p| p["type"] != "row")
        .collect();
    let mut titles = BTreeSet::new();
    for panel in &with_queries {
        let title = panel["title"].as_str().expect("a title");
        titles.insert(title);
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: the data source variable"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: a query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            assert!(target["refId"].is_string(), "{title}: a refId");
            queries.push(as_promql(target["expr"].as_str().expect("an expr")));
        }
    }
    for expected in [
        "Tasks/s by status",
        "Errors/s by kind",
        "Task duration p50 / p95 / p99",
        "In flight vs worker slots",
        "Hub polls/s by result",
        "Results/s by outcome",
        "Rate-limit decisions/s",
        "Hub connected / ready",
        "Build info",
        "Process CPU",
        "Process memory",
        "Queue depth by provider",
        "Dev hub tasks by state",
        "Dev hub result latency p50 / p95 / p99",
    ] {
        assert!(titles.contains(expected), "no panel {expected:?}");
    }
    let ids: Vec<u64> = panels(&dashboard)
        .iter()
        .map(|p| p["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "panel ids are unique"
    );
    assert_all_known("grafana-dashboard.json", &queries);

    // Prometheus's own parser, through promtool: each query as a recording rule.
    if let Some(promtool) = Promtool::find() {
        #[derive(serde::Serialize)]
        struct Recording {
            record: String,
            expr: String,
        }
        let rules: Vec<Recording> = queries
            .iter()
            .enumerate()
            .map(|(i, expr)| Recording {
                record: format!("dashboard:query_{i}"),
                expr: expr.clone(),
            })
            .collect();
        let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dashboard-queries.yml");
        std::fs::write(&path, serde_norway::to_string(&file).unwrap()).unwrap();
        assert_passed("the dashboard's queries", &promtool.check_rules(&path));
    }
}

#[test]
fn the_metric_check_itself_catches_an_unknown_name() {
    assert!(is_known("arbv_task_duration_seconds_bucket"));
    assert!(is_known("process_resident_memory_bytes"));
    assert!(!is_known("arbv_task_duration_bucket"));
    assert!(!is_known("arbv_tasks_totl"));
    assert_eq!(
        metric_names(&as_promql(
            r#"sum by (le) (rate(arbv_task_duration_seconds_bucket{provider=~"$provider"}[$__rate_interval])) / on () group_left up"#
        )),
        BTreeSet::from(["arbv_task_duration_seconds_bucket".into(), "up".into()])
    );
    let unnamed = std::panic::catch_unwind(|| metric_names(r#"{__name__=~"arbv_.+"}"#));
    assert!(unnamed.is_err(), "a selector without a name is refused");
}
