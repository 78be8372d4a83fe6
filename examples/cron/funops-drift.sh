#!/bin/sh
# The scheduled drift check, run by cron (crontab) or by systemd (funops-drift.timer).
#   FUNOPS_REPO        the funops repo checkout (required); pulled first when it tracks a branch
#   FUNOPS_DRIFT_DIR   where the last JSON report goes (default /var/lib/funops-drift)
#   FUNOPS_NOTIFY_URL  optional webhook: gets the JSON report when the check is not clean
# Exit code: funops's (0 clean, 2 drift, 4 unreachable, 3 fix failed, 1 error), so that cron mails
# and systemd marks the unit failed exactly when someone should look.
set -u
repo=${FUNOPS_REPO:?set FUNOPS_REPO to the funops repo checkout}
out=${FUNOPS_DRIFT_DIR:-/var/lib/funops-drift}
mkdir -p "$out"
if git -C "$repo" rev-parse --abbrev-ref '@{upstream}' >/dev/null 2>&1; then
  # Drift against a stale checkout would report the repo's latest changes as drift.
  git -C "$repo" pull --ff-only --quiet || echo "funops-drift: git pull failed; checking the checkout as it is" >&2
fi
NO_COLOR=1 funops drift --repo "$repo" --output json ${FUNOPS_NOTIFY_URL:+--notify "$FUNOPS_NOTIFY_URL"} \
  >"$out/last.json.tmp"
code=$?
mv "$out/last.json.tmp" "$out/last.json"
if [ "$code" -ne 0 ]; then
  echo "funops drift exited $code (2 drift, 4 unreachable, 1 error): see $out/last.json"
fi
exit "$code"
