#!/bin/sh
# Writes fresh random credentials into the Secret sources of this directory
# (the committed files hold placeholders). Run it once before the first
# `kubectl apply -k manifests/`, and do not commit its output.
# Registry credentials: put a docker config.json into registry.dockerconfigjson,
# e.g. from `kubectl create secret docker-registry x --docker-server=… --dry-run=client -o jsonpath='{.data.\.dockerconfigjson}' | base64 -d`.
set -eu
cd "$(dirname "$0")"
random() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
printf 'access-key=kcr\nsecret-key=%s\n' "$(random 24)" > s3.env
printf 'token=%s\n' "$(random 32)" > node-agent.env
echo "wrote $(pwd)/s3.env and $(pwd)/node-agent.env"
