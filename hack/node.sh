#!/usr/bin/env bash
# One real node beside the local control plane: containerd + runc + a CNI bridge + kubelet + kube-proxy,
# started as plain processes on this machine, so test pods really run. kwok nodes stay for scale tests.
# CoreDNS runs beside them as the cluster DNS, so pods resolve <svc>.<ns>.svc as in any real cluster.
#
# The node is tainted helm-e2e.dev/real-node=true:NoSchedule and labelled helm-e2e.dev/node=real: only
# pods that tolerate the taint and select the label (the real-node tests set both) land on it.
#
# Usage: hack/node.sh preflight | up | down | status | env
#   preflight  check the host and say exactly what is missing (installs nothing)
#   up         install missing Debian packages, build/cache binaries and images, start the node, wait Ready
#   down       stop only what `up` started, unmount, delete the bridge and iptables rules, restore sysctls
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.sh
source "$here/versions.sh"

NODE_NAME=${HELM_E2E_NODE_NAME:-helm-e2e-node}
CLUSTER_NAME=${KWOK_CLUSTER_NAME:-helm-e2e}
KUBECONFIG_PATH=$HELM_E2E_CACHE/kubeconfig
PKI=$HELM_E2E_CACHE/kwok/clusters/$CLUSTER_NAME/pki
NODE=$HELM_E2E_CACHE/node                   # kept: certificates, containerd's image store
RUN=/run/helm-e2e-node                      # removed by down: sockets, pids, kubelet/containerd state
KUBELET_ROOT=/var/lib/helm-e2e-kubelet      # removed by down
POD_CIDR=10.244.0.0/24
BRIDGE=helm-e2e0
PAUSE_IMAGE=localhost/pause:3.10
DNS_READY=127.0.0.1:10254                   # CoreDNS's ready endpoint: 200 once it has the Services
bin=$HELM_E2E_BIN/current

log() { printf '[node] %s\n' "$*" >&2; }
kctl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

node_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
  [ -n "$ip" ] || ip=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
  echo "$ip"
}

# --- preflight ------------------------------------------------------------------------------------

missing_packages() {
  local pkgs=()
  command -v runc >/dev/null || pkgs+=(runc)
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] \
    && [ -x /usr/lib/cni/portmap ] || pkgs+=(containernetworking-plugins)
  command -v iptables >/dev/null || pkgs+=(iptables)
  command -v conntrack >/dev/null || pkgs+=(conntrack)
  command -v ethtool >/dev/null || pkgs+=(ethtool)
  command -v socat >/dev/null || pkgs+=(socat)
  # hack/images.sh: the project's Dockerfiles, the Python base and the busybox test-hook image
  command -v buildah >/dev/null || pkgs+=(buildah)
  command -v debootstrap >/dev/null || pkgs+=(debootstrap)
  [ -x /bin/busybox ] || pkgs+=(busybox-static)
  command -v gcc >/dev/null || pkgs+=(gcc libc6-dev)
  command -v openssl >/dev/null || pkgs+=(openssl)
  echo "${pkgs[@]}"
}

preflight() {  # prints every problem, returns 1 if there is any
  local problems=()
  [ "$(id -u)" = 0 ] || problems+=("not root: kubelet and containerd need root (mounts, cgroups, network namespaces)")
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    :  # cgroup v2
  else
    for c in cpu cpuacct cpuset memory pids; do
      [ -d "/sys/fs/cgroup/$c" ] || problems+=("cgroup v1 controller $c is not mounted at /sys/fs/cgroup/$c")
    done
  fi
  [ -w /proc/sys/fs/inotify/max_user_instances ] \
    || problems+=("/proc/sys is not writable here: kubelet sets vm.overcommit_memory and kernel.panic* and exits otherwise")
  grep -qw overlay /proc/filesystems || problems+=("no overlay filesystem in /proc/filesystems: containerd's overlayfs snapshotter needs it")
  if ip link add helm-e2e-probe type bridge 2>/dev/null; then
    ip link del helm-e2e-probe
  else
    problems+=("cannot create a bridge interface (ip link add ... type bridge): the CNI bridge needs it")
  fi
  local pkgs; pkgs=$(missing_packages)
  [ -z "$pkgs" ] || problems+=("missing Debian packages: $pkgs (apt-get install -y $pkgs; make node-up installs them)")
  [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 4096 ] \
    || problems+=("hard open-files limit $(ulimit -Hn) < 4096")
  [ -n "$(node_ip)" ] || problems+=("no non-loopback IPv4 address for the node")
  for port in 10250 10248; do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && ! [ -f "$RUN/kubelet.pid" ]; then
      problems+=("port $port is in use by another program: kubelet needs it")
    fi
  done
  if [ -n "$(node_ip)" ] && (echo >"/dev/tcp/$(node_ip)/53") 2>/dev/null && ! [ -f "$RUN/coredns.pid" ]; then
    problems+=("port 53 on $(node_ip) is in use by another program: the cluster DNS (CoreDNS) needs it")
  fi
  [ -f "$KUBECONFIG_PATH" ] && kctl get --raw /readyz >/dev/null 2>&1 \
    || problems+=("the local control plane is not running: make cluster-up")
  if [ ${#problems[@]} -gt 0 ]; then
    log "preflight: this host cannot run a real node:"
    printf '  - %s\n' "${problems[@]}" >&2
    return 1
  fi
  log "preflight ok: $(uname -r), cgroup $([ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2 || echo v1), node IP $(node_ip)"
}

install_packages() {
  local pkgs; pkgs=$(missing_packages)
  [ -n "$pkgs" ] || return 0
  [ "$(id -u)" = 0 ] || { log "missing Debian packages: $pkgs (run as root to install them)"; return 1; }
  log "installing Debian packages: $pkgs"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >&2; }
}

# --- configuration --------------------------------------------------------------------------------

sign_cert() {  # name CN O  → $NODE/pki/<name>.{crt,key}, signed by the cluster CA
  local name=$1 cn=$2 org=$3 dir=$NODE/pki
  mkdir -p "$dir"
  if [ -f "$dir/$name.crt" ] && openssl verify -CAfile "$PKI/ca.crt" "$dir/$name.crt" >/dev/null 2>&1; then
    return 0  # still signed by this cluster's CA
  fi
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" -subj "/O=$org/CN=$cn" \
    -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 365 -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
}

write_kubeconfig() {  # name → $NODE/<name>.kubeconfig with the client cert of that name
  local name=$1 server
  server=$(kctl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$NODE/$name.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$server", certificate-authority: "$PKI/ca.crt"}
users:
- name: $name
  user: {client-certificate: "$NODE/pki/$name.crt", client-key: "$NODE/pki/$name.key"}
contexts:
- name: local
  context: {cluster: local, user: $name}
current-context: local
YAML
}

write_configs() {
  mkdir -p "$NODE" "$RUN/cni/net.d" "$RUN/pod-logs" "$KUBELET_ROOT"
  sign_cert kubelet "system:node:$NODE_NAME" system:nodes
  sign_cert kube-proxy system:kube-proxy system:node-proxier
  write_kubeconfig kubelet
  write_kubeconfig kube-proxy

  cat >"$RUN/cni/net.d/10-helm-e2e.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "helm-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$RUN/cni/networks"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
JSON

  # CAP_SYS_RESOURCE may be missing from the bounding set (Firecracker VMs): never raise oom_score_adj.
  cat >"$RUN/containerd.toml" <<TOML
version = 3
root = "$NODE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$RUN/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$(command -v runc)"
      SystemdCgroup = false
TOML

  local ip; ip=$(node_ip)
  # Pods reach the node IP through the bridge's gateway, so the DNS listens there. Names outside the
  # cluster go to the host's own resolver, never anywhere the host would not go itself.
  local forward="forward . /etc/resolv.conf"
  grep -q '^nameserver' /etc/resolv.conf 2>/dev/null || forward="# the host has no resolver: other names fail"
  write_if_changed coredns "$RUN/Corefile" <<COREFILE
.:53 {
    bind $ip
    errors
    ready $DNS_READY
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_PATH
        fallthrough in-addr.arpa ip6.arpa
    }
    $forward
    cache 30
}
COREFILE

  write_if_changed kubelet "$RUN/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false           # cgroup v1 hosts; the default becomes true in 1.35
cgroupDriver: cgroupfs        # PID 1 is not systemd
containerRuntimeEndpoint: unix://$RUN/containerd.sock
failSwapOn: false
oomScoreAdj: 0                # no CAP_SYS_RESOURCE to lower it
maxOpenFiles: $(( $(ulimit -Hn) < 1000000 ? $(ulimit -Hn) : 1000000 ))
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
registerWithTaints:
- {key: helm-e2e.dev/real-node, value: "true", effect: NoSchedule}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100   # images are imported, never pulled: nothing could be re-pulled
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podLogsDir: $RUN/pod-logs
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
clusterDNS: [$ip]
podCIDR: $POD_CIDR
staticPodPath: ""
rotateCertificates: false
serverTLSBootstrap: false
YAML
}

# --- processes ------------------------------------------------------------------------------------

running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

write_if_changed() {  # name file < content: a running process reads its config once, so `up` on a node
  local name=$1 file=$2 new   # started with an older config restarts it (pods keep running)
  new=$(cat)
  [ "$new" = "$(cat "$file" 2>/dev/null)" ] && return 0
  echo "$new" >"$file"
  running "$name" && { log "$name's configuration changed: restarting it"; stop "$name"; }
  return 0
}

start() {  # name command...
  local name=$1; shift
  running "$name" && return 0
  mkdir -p "$RUN/logs"
  log "starting $name (log: $RUN/logs/$name.log)"
  setsid "$@" >>"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # seconds description command...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "$what did not happen within ${seconds}s"
  return 1
}

set_sysctl() {  # key value: remembers the original once, so down restores it
  local key=$1 value=$2 file=/proc/sys/${1//.//}
  [ -w "$file" ] || return 0
  grep -q "^$key=" "$RUN/sysctl.orig" 2>/dev/null || echo "$key=$(cat "$file")" >>"$RUN/sysctl.orig"
  echo "$value" >"$file"
}

crictl_() { "$bin/crictl" --runtime-endpoint "unix://$RUN/containerd.sock" "$@"; }

import_images() {  # every archive hack/images.sh built, unless this containerd already has that build
  local dir=$HELM_E2E_CACHE/images seen=$NODE/containerd/helm-e2e-imported  # goes with the store
  mkdir -p "$seen"
  for tar in "$dir"/*.tar; do
    [ -e "$tar" ] || continue
    local name; name=$(basename "$tar" .tar)
    cmp -s "${tar%.tar}.hash" "$seen/$name.hash" && continue
    "$bin/ctr" --address "$RUN/containerd.sock" -n k8s.io images import --platform linux/amd64 \
      "$tar" >/dev/null 2>"$RUN/logs/import-$name.log" \
      || { log "importing $tar failed:"; cat "$RUN/logs/import-$name.log" >&2; return 1; }
    cp "${tar%.tar}.hash" "$seen/$name.hash"
  done
  log "images in containerd (k8s.io): $("$bin/ctr" --address "$RUN/containerd.sock" -n k8s.io images ls -q | grep -c '^localhost/')"
}

up() {
  local t0=$SECONDS
  install_packages
  "$here/build-binaries.sh" node
  preflight
  "$here/images.sh" "${HELM_E2E_NODE_IMAGES:-all}"
  mkdir -p "$RUN"
  set_sysctl fs.inotify.max_user_instances 8192
  set_sysctl fs.inotify.max_user_watches 524288
  set_sysctl net.ipv4.ip_forward 1
  set_sysctl net.bridge.bridge-nf-call-iptables 1
  write_configs

  PATH=$bin:$PATH start containerd "$bin/containerd" --config "$RUN/containerd.toml"
  wait_for 30 "containerd answering on $RUN/containerd.sock" crictl_ info
  import_images

  start coredns "$bin/coredns" -conf "$RUN/Corefile"
  wait_for 60 "CoreDNS ready (cluster.local from the apiserver, log: $RUN/logs/coredns.log)" \
    curl -fsS "http://$DNS_READY/ready"

  start kubelet "$bin/kubelet" --config "$RUN/kubelet.yaml" --kubeconfig "$NODE/kubelet.kubeconfig" \
    --root-dir "$KUBELET_ROOT" --cert-dir "$NODE/kubelet-serving" --hostname-override "$NODE_NAME" \
    --node-ip "$(node_ip)" --node-labels "helm-e2e.dev/node=real,node.kubernetes.io/instance-type=real" \
    --v 1
  start kube-proxy "$bin/kube-proxy" --kubeconfig "$NODE/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
    --cluster-cidr "$POD_CIDR" --proxy-mode iptables --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  wait_for 120 "node $NODE_NAME registering" kctl get node "$NODE_NAME"
  kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null \
    || { log "node $NODE_NAME not Ready; kubelet log tail:"; tail -20 "$RUN/logs/kubelet.log" >&2; return 1; }
  log "node $NODE_NAME Ready in $((SECONDS - t0))s (pods: nodeSelector helm-e2e.dev/node=real + toleration helm-e2e.dev/real-node; cluster DNS $(node_ip):53)"
}

stop() {  # name [signal]
  local name=$1 pid
  [ -f "$RUN/$name.pid" ] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

drop_chains() {  # iptables|ip6tables: every KUBE-* (kubelet, kube-proxy) and CNI-* (bridge plugin) chain
  command -v "$1" >/dev/null || return 0
  local table rule chain
  for table in filter nat mangle; do
    "$1" -t "$table" -S 2>/dev/null | grep -E -- '^-A .* -j (KUBE|CNI)-' | sed 's/^-A/-D/' \
      | while read -r rule; do eval "$1 -t $table $rule" 2>/dev/null || true; done || true
    for chain in $("$1" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/{print $2}'); do
      "$1" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$1" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/{print $2}'); do
      "$1" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

down() {
  [ -d "$RUN" ] || { log "node $NODE_NAME is not running"; return 0; }
  stop kubelet
  if running containerd; then  # pods first, while containerd can still tear down their sandboxes
    crictl_ rmp -fa >/dev/null 2>&1 || true
  fi
  stop kube-proxy
  stop coredns
  "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true  # its KUBE-* iptables chains
  stop containerd
  # shims outlive containerd by design; only the ones serving our containerd are ours
  pkill -f "containerd-shim-runc-v2 .*-address $RUN/containerd.sock" 2>/dev/null || true
  # unmount deepest first: volumes, sandboxes' /dev/shm, rootfs overlays, netns files
  awk -v a="$KUBELET_ROOT" -v b="$RUN" -v c="$NODE/containerd" \
    'index($2, a) == 1 || index($2, b) == 1 || index($2, c) == 1 {print $2}' /proc/mounts \
    | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  ip link del "$BRIDGE" 2>/dev/null || true
  drop_chains iptables
  drop_chains ip6tables
  if [ -f "$RUN/sysctl.orig" ]; then
    while IFS== read -r key value; do echo "$value" >"/proc/sys/${key//.//}" 2>/dev/null || true; done <"$RUN/sysctl.orig"
  fi
  [ -f "$KUBECONFIG_PATH" ] && kctl delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$RUN" "$KUBELET_ROOT"
  log "node $NODE_NAME removed (kept: images and certificates in $NODE)"
}

status() {
  for p in containerd kubelet kube-proxy coredns; do
    running "$p" && echo "$p: running (pid $(cat "$RUN/$p.pid"))" || echo "$p: stopped"
  done
  running coredns && echo "cluster DNS: $(node_ip):53 serves cluster.local (kubelet --cluster-dns)"
  kctl get node "$NODE_NAME" -o wide 2>/dev/null || echo "node $NODE_NAME is not registered"
}

case ${1:-} in
  preflight) preflight ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 preflight|up|down|status" >&2; exit 2 ;;
esac
