/**
 * Layout checks that run in the page (their DOM code type-checks here, under test/browser's tsconfig, not
 * under the server's, which also compiles test/helpers).
 */
import type { Page } from "playwright-core";

/**
 * Elements drawn past the viewport's left or right edge, described for a failure message: what a reader at this
 * width sees only by scrolling sideways, the page or a box inside it. (The document being no wider than the
 * viewport is not enough: a table in a box that scrolls keeps its right part out of sight there.) What an
 * ancestor clips (overflow hidden, clip) is left out: it is not drawn, so not beyond the edge.
 */
export function offscreenElements(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const found: string[] = [];
    for (const element of document.body.querySelectorAll("*")) {
      const box = element.getBoundingClientRect();
      let [left, right] = [box.left, box.right];
      for (let parent = element.parentElement; parent && right > left; parent = parent.parentElement) {
        const style = getComputedStyle(parent);
        if (style.overflowX !== "hidden" && style.overflowX !== "clip" && style.clip === "auto") continue;
        const clip = parent.getBoundingClientRect();
        [left, right] = [Math.max(left, clip.left), Math.min(right, clip.right)];
      }
      if (!box.height || right - left <= 0 || (left > -1 && right < width + 1)) continue;
      const name = element.tagName.toLowerCase() + [...element.classList].map((name) => `.${name}`).join("");
      found.push(`${name} from ${Math.round(left)} to ${Math.round(right)} px: "${(element.textContent ?? "").trim().slice(0, 50)}"`);
    }
    return found;
  });
}
