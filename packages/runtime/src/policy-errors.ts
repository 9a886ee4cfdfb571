// Errors of policy documents. A document is checked in three passes (syntax, proto3 JSON shape,
// core ranges); every finding names the field path in proto3 JSON (camelCase) form so an operator
// can go straight to the line to fix.

/** One finding: `path` like `classes[1].ttftObjectiveMs`, `message` with the value and what is allowed. */
export interface PolicyIssue {
  readonly path: string;
  readonly message: string;
}

/** Path used for findings about the document as a whole (syntax, top-level type). */
export const DOCUMENT_PATH = "(document)";

/** A policy document is invalid. `issues` has at least one entry; `field` is the first one's path. */
export class PolicyDocumentError extends Error {
  override readonly name = "PolicyDocumentError";
  readonly issues: readonly PolicyIssue[];
  readonly field: string;
  constructor(issues: readonly PolicyIssue[], options?: ErrorOptions) {
    const list = issues.length > 0 ? issues : [{ path: DOCUMENT_PATH, message: "is invalid" }];
    super(list.map(formatPolicyIssue).join("; "), options);
    this.issues = list;
    this.field = (list[0] as PolicyIssue).path;
  }
}

/** `ingress.kvOvercommit: must be a finite number ≥ 0, got -1` */
export function formatPolicyIssue(issue: PolicyIssue): string {
  return `${issue.path}: ${issue.message}`;
}
