/**
 * digest/: phase digests (extractive), prompt templating and the child's context file, the final
 * report in Markdown and the timeline report in HTML. Pure functions over records; see DESIGN.md
 * in this folder for goals and non-goals.
 */
export {
  DEFAULT_DIGEST_CHARS,
  phaseDigest,
  phaseDigests,
  summarizeStructured,
  type PhaseDigestInput,
  type PhaseDigestsInput,
} from './extractive.js';
export {
  buildContextFile,
  MIN_CONTEXT_BYTES,
  missingDigestNote,
  renderPrompt,
  type ContextDep,
  type ContextFile,
  type ContextFileDep,
  type ContextFileInput,
  type PromptContext,
} from './template.js';
export { escapeMarkdownInline, fence, renderReportMarkdown, REPORT_MAX_BYTES, type ReportInput } from './report-md.js';
export { renderReportHtml, STATUS_COLOURS, type ReportHtmlInput } from './report-html.js';
export { renderTimeline, pausesOf, barStatus, TIMELINE_CSS, TIMELINE_SCRIPT, type TimelineInput, type Pause, type BarStatus, type BarKind, type RunningAttempt } from './timeline.js';
export { escapeHtml, renderInline, renderMarkdownHtml } from './markdown-html.js';
export { failureCause, latestAttempts, refOf, STATUS_LABELS } from './records.js';
