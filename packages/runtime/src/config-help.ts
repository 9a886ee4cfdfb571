// `--help` text and the markdown reference, both rendered from the schema so docs cannot drift from code.

import { CONFIG_FILE_ENV } from "./config.js";
import type { ConfigSchema, Setting } from "./config-schema.js";
import { envVarName } from "./config-schema.js";
import { describeAllowed, describeDefault } from "./config-values.js";

export interface HelpOptions {
  /** Command as typed, e.g. `sluice router`. */
  command: string;
  /** One paragraph saying what the command does. */
  summary?: string;
  /** Extra usage after `[options]`, e.g. `<policy-file>`. */
  positionalsUsage?: string;
}

const VALUE_PLACEHOLDER: Readonly<Record<Setting["type"], string>> = {
  string: "<string>",
  int: "<int>",
  number: "<number>",
  boolean: "",
  duration: "<duration>",
  enum: "<value>",
  list: "<a,b,...>",
};

export function renderHelp(schema: ConfigSchema, options: HelpOptions): string {
  const lines: string[] = [];
  lines.push(
    `Usage: ${options.command} [options]${options.positionalsUsage ? ` ${options.positionalsUsage}` : ""}`,
  );
  if (options.summary) lines.push("", options.summary);
  lines.push(
    "",
    "Settings are read from flags, then SLUICE_* environment variables, then the config file, then defaults.",
    "",
    "Options:",
    "  -h, --help",
    "      Show this help and exit.",
    "  --config <file>",
    `      YAML or JSON file of settings (kebab-case or camelCase keys). env ${CONFIG_FILE_ENV}`,
  );
  for (const [name, s] of Object.entries(schema)) {
    const placeholder = VALUE_PLACEHOLDER[s.type];
    const flag =
      s.noFlag === true
        ? `${envVarName(name)} (env or config file only)`
        : s.type === "boolean"
          ? `--${name}, --no-${name}`
          : `--${name} ${placeholder}`;
    lines.push(`  ${flag}`, `      ${s.description}`);
    lines.push(
      `      env ${envVarName(name)} · ${s.type} · default ${describeDefault(s)} · ${describeAllowed(s)}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** A markdown table of the schema for docs/configuration.md. */
export function renderMarkdown(schema: ConfigSchema, title?: string): string {
  const rows = Object.entries(schema).map(([name, s]) =>
    [
      s.noFlag === true ? "(none: env or file only)" : `\`--${name}\``,
      `\`${envVarName(name)}\``,
      s.type,
      `\`${describeDefault(s)}\``,
      `${s.description} Accepts ${describeAllowed(s)}.`,
    ]
      .map(escapeCell)
      .join(" | "),
  );
  const head = title ? `## ${title}\n\n` : "";
  return `${head}| flag | env | type | default | description |\n|---|---|---|---|---|\n${rows.map((r) => `| ${r} |`).join("\n")}\n`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
