import "./dispose.js";

export { ServerNotInstalledError, ServerStartError, UnsupportedOnExternalServerError } from "./errors.js";
export type { EtcdServer, EtcdServerOptions } from "./etcd-server.js";
export { ETCD_ENDPOINTS_ENV, startEtcd } from "./etcd-server.js";
export type { FaultProxy, FaultProxyOptions, ProxyDirection } from "./fault-proxy.js";
export { startFaultProxy } from "./fault-proxy.js";
export type { ServerHandle, ServerLaunchOptions } from "./managed-server.js";
export { DEFAULT_READY_TIMEOUT_MS, DEFAULT_STOP_TIMEOUT_MS } from "./managed-server.js";
export type { NatsServer, NatsServerOptions } from "./nats-server.js";
export { NATS_URL_ENV, startNats } from "./nats-server.js";
export { freePort } from "./ports.js";
