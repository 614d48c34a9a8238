#!/bin/sh
# A stand-in for the kind CLI, for the driver tests only: it records its arguments, keeps a list
# of clusters, writes a kubeconfig, and fails as kind does. Its mode is in the file `mode` beside
# it: docker-down, create-fails, exists-on-create.
dir=$(dirname "$0")
echo "$*" >> "$dir/args.log"
mode=$(cat "$dir/mode" 2>/dev/null)
touch "$dir/clusters"
docker_down() {
  echo 'ERROR: failed to list clusters: command "docker ps -a --filter label=io.x-k8s.kind.cluster" failed with error: exit status 1' >&2
  echo 'Command Output: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2
  exit 1
}
kubeconfig() {
  cat <<KC
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==
    server: https://127.0.0.1:40123
  name: kind-$1
contexts:
- context:
    cluster: kind-$1
    user: kind-$1
  name: kind-$1
current-context: kind-$1
kind: Config
preferences: {}
users:
- name: kind-$1
  user:
    client-certificate-data: Q0xJRU5ULUNFUlQ=
    client-key-data: U1RBTkRJTi1DTElFTlQtS0VZ
KC
}
cmd="$1 $2"
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2;;
    --config) config="$2"; shift 2;;
    --kubeconfig) kc="$2"; shift 2;;
    *) shift;;
  esac
done
case "$cmd" in
  "version "*|"version") echo "kind v0.32.0 go1.24.6 linux/amd64";;
  "get clusters")
    [ "$mode" = docker-down ] && docker_down
    if [ -s "$dir/clusters" ]; then cat "$dir/clusters"; else echo "No kind clusters found." >&2; fi;;
  "create cluster")
    [ "$mode" = docker-down ] && docker_down
    if grep -qx "$name" "$dir/clusters" || [ "$mode" = exists-on-create ]; then
      echo "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"$name\"" >&2; exit 1
    fi
    if [ "$mode" = create-fails ]; then
      echo "Creating cluster \"$name\" ..." >&2
      echo "ERROR: failed to create cluster: failed to pull image \"kindest/node\": command \"docker pull\" failed with error: exit status 1" >&2
      exit 1
    fi
    cp "$config" "$dir/last-config.json"
    echo "$kc" > "$dir/last-kubeconfig-path"
    kubeconfig "$name" > "$kc"
    echo "$name" >> "$dir/clusters";;
  "get kubeconfig")
    if ! grep -qx "$name" "$dir/clusters"; then
      echo "ERROR: could not locate any control plane nodes for cluster named '$name'. Use the --name option to select a different cluster" >&2; exit 1
    fi
    kubeconfig "$name";;
  "delete cluster")
    echo "Deleting cluster \"$name\" ..." >&2
    grep -vx "$name" "$dir/clusters" > "$dir/clusters.new"; mv "$dir/clusters.new" "$dir/clusters";;
  *) echo "ERROR: unknown command \"$cmd\" for \"kind\"" >&2; exit 1;;
esac
