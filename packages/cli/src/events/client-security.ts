// Credentials and TLS of the short-lived operator commands (`sluice status`, `sluice events`): the
// processes' own settings (same flags, same SLUICE_* variables, secrets from files or env only), so
// an operator points these commands at a secured cluster exactly as the processes are pointed
// (docs/security.md).

import { commonSchema, defineSchema } from "@sluice/runtime";

export const natsClientSecuritySchema = defineSchema({
  "nats-user": commonSchema["nats-user"],
  "nats-password": commonSchema["nats-password"],
  "nats-password-file": commonSchema["nats-password-file"],
  "nats-token": commonSchema["nats-token"],
  "nats-token-file": commonSchema["nats-token-file"],
  "nats-nkey-seed-file": commonSchema["nats-nkey-seed-file"],
  "nats-creds": commonSchema["nats-creds"],
  "nats-tls-ca": commonSchema["nats-tls-ca"],
  "nats-tls-cert": commonSchema["nats-tls-cert"],
  "nats-tls-key": commonSchema["nats-tls-key"],
});

export const etcdClientSecuritySchema = defineSchema({
  "etcd-user": commonSchema["etcd-user"],
  "etcd-password": commonSchema["etcd-password"],
  "etcd-password-file": commonSchema["etcd-password-file"],
  "etcd-tls-ca": commonSchema["etcd-tls-ca"],
  "etcd-tls-cert": commonSchema["etcd-tls-cert"],
  "etcd-tls-key": commonSchema["etcd-tls-key"],
});
