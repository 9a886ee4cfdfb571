import "./dispose.js";

export { ServerNotInstalledError, ServerStartError, UnsupportedOnExternalServerError } from "./errors.js";
export type { EtcdRolePermission, EtcdServerAuth } from "./etcd-auth-setup.js";
export type { EtcdCluster, EtcdClusterOptions } from "./etcd-cluster.js";
export { startEtcdCluster } from "./etcd-cluster.js";
export type { EtcdServer, EtcdServerOptions, EtcdServerTls } from "./etcd-server.js";
export { ETCD_ENDPOINTS_ENV, startEtcd } from "./etcd-server.js";
export type { FaultProxy, FaultProxyOptions, ProxyDirection } from "./fault-proxy.js";
export { startFaultProxy } from "./fault-proxy.js";
export type { ServerHandle, ServerLaunchOptions } from "./managed-server.js";
export { DEFAULT_READY_TIMEOUT_MS, DEFAULT_STOP_TIMEOUT_MS } from "./managed-server.js";
export type { NatsCluster, NatsClusterOptions } from "./nats-cluster.js";
export { startNatsCluster } from "./nats-cluster.js";
export type { TestNatsOperator } from "./nats-operator.js";
export { createTestNatsOperator, credsText } from "./nats-operator.js";
export type {
  NatsServer,
  NatsServerAuth,
  NatsServerOptions,
  NatsServerPermissions,
  NatsServerTls,
  NatsServerUser,
} from "./nats-server.js";
export { NATS_URL_ENV, startNats } from "./nats-server.js";
export { freePort } from "./ports.js";
export type { TestCertificates, TestCertificatesOptions } from "./tls-certs.js";
export { createTestCertificates } from "./tls-certs.js";
