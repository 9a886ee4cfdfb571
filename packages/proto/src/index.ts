// Public API of @sluice/proto: the generated wire types of proto/sluice/v1 (schemas, message
// and JSON types, enums, services) and the grpc-js adapter for the services; plus the wire-compatible
// subset of Envoy's global rate limit API (proto/envoy) that `sluice ingress` serves.
export * from "./gen/envoy/config/core/v3/base_pb.js";
export * from "./gen/envoy/extensions/common/ratelimit/v3/ratelimit_pb.js";
export * from "./gen/envoy/service/ratelimit/v3/rls_pb.js";
export * from "./gen/envoy/type/v3/ratelimit_unit_pb.js";
export * from "./gen/sluice/v1/admission_pb.js";
export * from "./gen/sluice/v1/common_pb.js";
export * from "./gen/sluice/v1/engine_pb.js";
export * from "./gen/sluice/v1/events_pb.js";
export * from "./gen/sluice/v1/policy_pb.js";
export * from "./gen/sluice/v1/router_pb.js";
export * from "./gen/sluice/v1/state_pb.js";
export type {
  GrpcClient,
  GrpcClientConstructor,
  GrpcServiceDefinition,
  GrpcServiceImplementation,
  UnaryCallOptions,
  UnaryClientMethod,
} from "./grpc.js";
export { callUnary, grpcClientConstructor, grpcServiceDefinition } from "./grpc.js";
