#!/bin/bash
# Runs inside the freshly debootstrapped node rootfs (chroot), after lab/node-rootfs/ was copied in.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# The non-root user for become/sudo tests. '*' (not '!'): no password, but not a locked account.
id deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy
usermod -p '*' deploy
chmod 440 /etc/sudoers.d/deploy

# Each node makes its own host keys at first boot (ssh.service.d/funops-lab.conf).
rm -f /etc/ssh/ssh_host_*
# Debian's default site listens on 0.0.0.0:80 and [::]:80.
rm -f /etc/nginx/sites-enabled/default
# An empty machine-id: systemd gives every container its own at boot.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# Units that cannot work (or only add noise) in a container without udev, dbus or real devices;
# with them masked `systemctl is-system-running` says `running`.
systemctl mask --quiet \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service \
  systemd-resolved.service systemd-networkd.service systemd-networkd.socket \
  systemd-networkd-wait-online.service systemd-logind.service \
  getty.target console-getty.service getty@tty1.service \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount \
  proc-sys-fs-binfmt_misc.mount proc-sys-fs-binfmt_misc.automount \
  systemd-remount-fs.service systemd-firstboot.service systemd-pstore.service e2scrub_reap.service \
  apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer dpkg-db-backup.timer
systemctl enable --quiet funops-lab-node.service ssh.service nginx.service docker.service

# Smaller image: no package lists, caches, docs or man pages.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
  /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
rm -f /usr/sbin/policy-rc.d
