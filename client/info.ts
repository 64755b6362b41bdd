/**
 * The document's info panel (stats from the HTTP API) and "download as file".
 */
import type { Language } from "./editor";
import type { DocumentInfo } from "../worker/documents";

const EXTENSIONS: Record<Language, string> = { markdown: "md", javascript: "js", typescript: "ts", plain: "txt" };

/** `/api/docs/<name><suffix>`, carrying the link's token when there is one. */
export function apiUrl(name: string, suffix: string, token: string | null): string {
  return `/api/docs/${name}${suffix}${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

function formatBytes(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Fills `target` with the server's figures for the document and whether this browser's edits are saved. */
export async function showInfo(target: HTMLElement, name: string, token: string | null, unconfirmed: boolean): Promise<void> {
  target.textContent = "Loading…";
  const response = await fetch(apiUrl(name, "", token)).catch(() => null);
  if (!response?.ok) {
    target.textContent = "Stats are unavailable right now.";
    return;
  }
  const info = (await response.json()) as DocumentInfo;
  const rows: [string, string][] = [
    ["Size", formatBytes(info.encodedBytes)],
    ["Stored", formatBytes(info.storedBytes)],
    ["Connections", String(info.sockets)],
    ["Your edits", unconfirmed ? "not yet saved" : "saved"],
    ["Last edit", info.lastUpdateAt ? new Date(info.lastUpdateAt).toLocaleString() : "never"],
  ];
  target.replaceChildren(
    ...rows.map(([label, value]) => {
      const row = document.createElement("div");
      row.dataset.label = label;
      row.appendChild(Object.assign(document.createElement("dt"), { textContent: label }));
      row.appendChild(Object.assign(document.createElement("dd"), { textContent: value }));
      return row;
    }),
  );
}

/** Downloads the document's text as `<name>.<extension for its language>`. */
export async function downloadText(name: string, token: string | null, language: Language): Promise<void> {
  const response = await fetch(apiUrl(name, "/text", token));
  if (!response.ok) throw new Error(`download failed: ${response.status}`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `${name}.${EXTENSIONS[language]}`;
  link.click();
  URL.revokeObjectURL(link.href);
}
