#!/usr/bin/env bash
# Follows docs/install.md step by step in a throwaway root: a mount namespace
# with its own /etc, /opt, /var/lib and /usr/local/bin (overlays and tmpfs), so
# nothing reaches the real machine. Runs every ```sh block of the document in
# order; apt-get and systemctl are stand-ins that only record their calls
# (there is no systemd to talk to here), then it starts the installed service's
# ExecStart as the pvegit user and checks that the web UI answers.
# Needs root. Usage: deploy/check-install.sh [SOURCE_DIR]
set -euo pipefail
source_dir=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d /tmp/pvegit-install-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{etc-upper,etc-work,varlib-upper,varlib-work,opt,localbin,stubs}

# Stand-ins for the parts of the machine a sandbox cannot have.
cat > "$work/stubs/apt-get" <<'STUB'
#!/bin/sh
echo "apt-get $*" >> "$PVEGIT_CALLS"
STUB
cat > "$work/stubs/systemctl" <<'STUB'
#!/bin/sh
echo "systemctl $*" >> "$PVEGIT_CALLS"
STUB
chmod +x "$work/stubs/"*

python3 - "$source_dir/docs/install.md" > "$work/steps.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
print("set -euxo pipefail")
for block in blocks:
    print(block)
PY

cat > "$work/inside.sh" <<INSIDE
set -euo pipefail
mount -t overlay overlay -o lowerdir=/etc,upperdir=$work/etc-upper,workdir=$work/etc-work /etc
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$work/varlib-upper,workdir=$work/varlib-work /var/lib
mount -t tmpfs tmpfs /opt
mount --bind $work/localbin /usr/local/bin
mkdir -p /opt/pvegit/src
(cd "$source_dir" && git ls-files -z | xargs -0 cp --parents -t /opt/pvegit/src)
export PATH=$work/stubs:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PVEGIT_CALLS=$work/calls
export PVEGIT_ADMIN_PASSWORD="install-check-password"
bash $work/steps.sh
echo "--- recorded calls:"; cat $work/calls
test -x /opt/pvegit/venv/bin/pvegit
test "\$(stat -c '%U %a' /var/lib/pvegit)" = "pvegit 700"
test -e /var/lib/pvegit/ssh/id_ed25519
grep -q "systemctl enable --now pvegit.service" $work/calls
# What systemd would start, as the service user, on a free port.
port=\$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
exec_start=\$(sed -n 's/^ExecStart=//p' /etc/systemd/system/pvegit.service)
runuser -u pvegit -- env PVEGIT_HOME=/var/lib/pvegit \$exec_start --listen 127.0.0.1:\$port > $work/serve.log 2>&1 &
server=\$!
for attempt in \$(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:\$port/login', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 \$server 2>/dev/null || { cat $work/serve.log; exit 1; }
    python3 -c 'import time; time.sleep(0.2)'
done
python3 -c "import urllib.request; assert b'Log in' in urllib.request.urlopen('http://127.0.0.1:\$port/login').read()"
kill \$server; wait \$server || true
echo "install check passed: docs/install.md works in a clean root"
INSIDE
unshare --mount --propagation private bash "$work/inside.sh"
