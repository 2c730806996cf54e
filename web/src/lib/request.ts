import type { Schemas } from '../api/client'
import { fitSize, sizePresets, withinLimits, type Preset, type Size } from './sizes'

type Model = Schemas['Model']
export type GenerationRequest = Schemas['GenerationRequest']

// An InitPicture is the picture a generation starts from: an upload's id
// or the name of one of the caller's images (both are what init_image takes).
export interface InitPicture {
  ref: string
  url: string
  width: number
  height: number
  label: string
}

// A Draft is the Generate form as typed: numbers stay text so a field can
// be blank (blank takes the model's default; a blank seed is random).
export interface Draft {
  prompt: string
  negative: string
  family: string
  preset: string
  steps: string
  cfg: string
  seed: string
  batch: string
  init?: InitPicture
  strength: number
  // The size of an image whose settings were taken, offered as a preset.
  custom?: Size
}

export const emptyDraft: Draft = {
  prompt: '', negative: '', family: '', preset: 'square', steps: '', cfg: '', seed: '', batch: '1', strength: 0.75,
}

// The presets that keep an init picture's size, and the size of an image
// whose settings were taken.
export const PICTURE = 'picture'
export const CUSTOM = 'custom'

// presetsFor lists the sizes the form offers for a model: the plan's
// presets, and first the init picture's own size (fitted to the plan) or
// the size of the image whose settings were taken, where the plan allows it.
export function presetsFor(model: Model, d: Pick<Draft, 'init' | 'custom'> = {}): Preset[] {
  const presets = sizePresets(model.defaults.width, model.limits)
  const fit = d.init && fitSize(d.init.width, d.init.height, model.limits)
  if (fit) return [{ id: PICTURE, label: 'As the picture', ...fit }, ...presets]
  const same = d.custom && withinLimits(d.custom, model.limits) && !presets.some((p) => p.width === d.custom!.width && p.height === d.custom!.height)
  return same ? [{ id: CUSTOM, label: 'As before', ...d.custom! }, ...presets] : presets
}

const MAX_SEED = 4294967295

// A FieldIssue is a field the form can tell is wrong before asking the API.
export interface FieldIssue {
  field: keyof Draft
  message: string
}

// Numbers are read only as typed plainly: "1e2" or "0x10" would pass
// Number() as a different-looking value, and a browser's number field
// turns text it cannot read ("1e", "--1") into blank without a word, so
// the fields are text and each is checked here.
const INTEGER = /^-?\d+$/
const DECIMAL = /^-?(\d+\.?\d*|\.\d+)$/

function whole(text: string, field: keyof Draft, label: string, min: number, max: number): FieldIssue | undefined {
  const t = text.trim()
  if (t === '') return undefined
  if (!INTEGER.test(t)) {
    return { field, message: DECIMAL.test(t) ? `${label} must be a whole number.` : `${label} must be a whole number, in digits only.` }
  }
  const n = Number(t)
  if (n < min || n > max) return { field, message: `${label} must be from ${min} to ${max}.` }
  return undefined
}

function guidance(text: string): FieldIssue | undefined {
  const t = text.trim()
  if (t === '') return undefined
  if (!DECIMAL.test(t)) return { field: 'cfg', message: 'Guidance must be a number, like 7 or 7.5.' }
  const n = Number(t)
  if (n < 1 || n > 30) return { field: 'cfg', message: 'Guidance must be from 1 to 30.' }
  return undefined
}

// checkDraft finds what the form can tell is wrong with a draft for a
// model on the caller's plan; the API checks everything again.
export function checkDraft(d: Draft, model: Model): FieldIssue[] {
  const issues = [
    whole(d.steps, 'steps', 'Steps', 1, model.limits.max_steps),
    guidance(d.cfg),
    whole(d.seed, 'seed', 'The seed', 0, MAX_SEED),
    whole(d.batch, 'batch', 'Images', 1, model.limits.max_batch_size),
  ]
  if (presetsFor(model, d).length === 0) {
    issues.push({ field: 'preset', message: `No size of ${model.family} fits your plan’s GPUs.` })
  }
  return issues.filter((i): i is FieldIssue => i !== undefined)
}

// buildRequest turns a valid draft into the body of POST /v1/generations
// (and /v1/quote); undefined while the prompt is blank or a field is wrong.
// Blank fields are left out so the API's defaults apply; a blank seed is
// left out so each job gets a random one.
export function buildRequest(d: Draft, model: Model): GenerationRequest | undefined {
  if (!d.prompt.trim() || checkDraft(d, model).length > 0) return undefined
  const presets = presetsFor(model, d)
  const size = presets.find((p) => p.id === d.preset) ?? presets[0]
  const req: GenerationRequest = { prompt: d.prompt.trim(), model: model.family }
  if (d.negative.trim()) req.negative_prompt = d.negative.trim()
  if (size) {
    req.width = size.width
    req.height = size.height
  }
  if (d.steps.trim()) req.steps = Number(d.steps)
  if (d.cfg.trim()) req.cfg_scale = Number(d.cfg)
  if (d.seed.trim()) req.seed = Number(d.seed)
  if (d.batch.trim() && Number(d.batch) !== 1) req.batch_size = Number(d.batch)
  if (d.init) {
    req.init_image = d.init.ref
    req.strength = d.strength
  }
  return req
}

// The settings of an image or job, as GET /v1/images/{name} (metadata) and
// the jobs list (params) show them.
export interface Settings {
  prompt?: string
  negative_prompt?: string
  model?: string
  width?: number
  height?: number
  steps?: number
  cfg_scale?: number
  seed?: number
  batch_size?: number
  strength?: number | null
}

// draftFrom fills the form from an image's or job's settings ("use these
// settings"): the same prompt, model, size, steps, guidance and seed. One
// image, so the seed makes that image again.
export function draftFrom(s: Settings, models: Model[]): Draft {
  const model = models.find((m) => m.family === s.model)
  const custom = s.width && s.height ? { width: s.width, height: s.height } : undefined
  const preset = model && presetsFor(model, { custom }).find((p) => p.width === s.width && p.height === s.height)
  return {
    ...emptyDraft,
    custom,
    prompt: s.prompt ?? '',
    negative: s.negative_prompt ?? '',
    family: model?.family ?? '',
    preset: preset?.id ?? emptyDraft.preset,
    steps: s.steps !== undefined ? String(s.steps) : '',
    cfg: s.cfg_scale !== undefined ? String(s.cfg_scale) : '',
    seed: s.seed !== undefined ? String(s.seed) : '',
  }
}
