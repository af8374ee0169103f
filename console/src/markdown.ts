/**
 * Message text as Markdown, safe by construction rather than by cleaning up afterwards:
 * - raw HTML is off (`html: false`): `<script>`, `<img onerror>` and the like come out as text;
 * - links are kept only for http, https and mailto; anything else (javascript:, data:, relative) stays text;
 * - images are never loaded: an image becomes a link to it (or text), so no remote host learns who reads;
 * - code is highlighted by highlight.js, whose output is escaped text in class-only spans.
 * The page's Content-Security-Policy (no inline script, images from the console itself only) is the second line.
 */
import MarkdownIt from "markdown-it";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

// The languages chats show most; each adds a few kB. Others render as plain (escaped) code.
for (const [name, language] of Object.entries({ bash, css, diff, go, java, javascript, json, python, rust, sql, typescript, xml, yaml })) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(["sh", "shell", "zsh", "console"], { languageName: "bash" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });

const SAFE_LINK = /^(?:https?:|mailto:)/i;

const md = new MarkdownIt({
  html: false,
  linkify: true,
  breaks: true, // chat text: a newline is a line break
  highlight(code, lang) {
    const language = lang.trim().toLowerCase();
    if (!language || !hljs.getLanguage(language)) return ""; // markdown-it escapes it
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  },
});

md.validateLink = (url) => SAFE_LINK.test(url.trim());

// An inline link whose target fails validateLink still becomes a link, to "" (markdown-it keeps the text
// linked): make it a plain span instead, closing tag included.
md.core.ruler.push("parley_blocked_links", (state) => {
  for (const block of state.tokens) {
    let blocked = false;
    for (const token of block.children ?? []) {
      if (token.type === "link_open") {
        blocked = !SAFE_LINK.test(String(token.attrGet("href") ?? ""));
        if (blocked) {
          token.tag = "span";
          token.attrs = [["class", "md-blocked-link"]];
        }
      } else if (token.type === "link_close" && blocked) {
        token.tag = "span";
        blocked = false;
      }
    }
  }
});

const renderToken = md.renderer.renderToken.bind(md.renderer);

md.renderer.rules.link_open = (tokens, index, options) => {
  const token = tokens[index];
  if (token.tag === "a") {
    token.attrSet("target", "_blank");
    token.attrSet("rel", "noopener noreferrer nofollow ugc");
  }
  return renderToken(tokens, index, options);
};

md.renderer.rules.image = (tokens, index, options, env) => {
  const token = tokens[index];
  const alt = md.utils.escapeHtml(md.renderer.renderInlineAsText(token.children ?? [], options, env) || "image");
  const src = String(token.attrGet("src") ?? "");
  if (!SAFE_LINK.test(src)) return `<span class="md-image">[image: ${alt}]</span>`;
  const href = md.utils.escapeHtml(src);
  return `<a class="md-image" href="${href}" target="_blank" rel="noopener noreferrer nofollow ugc">[image: ${alt}]</a>`;
};

// A code block scrolls sideways when its lines are long: focusable, so that the keyboard can scroll it too.
for (const rule of ["fence", "code_block"] as const) {
  const render = md.renderer.rules[rule]!;
  md.renderer.rules[rule] = (...args) => render(...args).replace(/^<pre>/, '<pre tabindex="0">');
}

/** HTML for a message's Markdown text; every piece of it is escaped or built here. */
export function renderMarkdown(text: string): string {
  return md.render(text);
}
