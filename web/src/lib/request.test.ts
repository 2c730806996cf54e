import { describe, expect, it } from 'vitest'
import type { Schemas } from '../api/client'
import { CUSTOM, PICTURE, buildRequest, checkDraft, draftFrom, emptyDraft, presetsFor, type Draft } from './request'

type Model = Schemas['Model']

const model = (family: Model['family'], native: number, maxBatch: number): Model => ({
  family, available: true, served: null, models: [], default_price: 1,
  defaults: { width: native, height: native, steps: 30, cfg_scale: 7 },
  limits: { min_side: 64, max_side: 1024, max_square_side: 1024, max_steps: 150, max_batch_size: maxBatch },
})
const free = model('sd-1.5', 512, 1)
const basic = model('sdxl', 1024, 4)
const draft = (d: Partial<Draft>): Draft => ({ ...emptyDraft, prompt: 'a fox', ...d })

describe('buildRequest', () => {
  it('sends the prompt, model and preset size, leaving blank fields to the API (a blank seed is random)', () => {
    expect(buildRequest(draft({}), free)).toEqual({ prompt: 'a fox', model: 'sd-1.5', width: 512, height: 512 })
  })

  it('sends the negative prompt, steps, guidance, seed and batch as typed', () => {
    const req = buildRequest(draft({ negative: ' blurry ', steps: '40', cfg: '6.5', seed: '0', batch: '3', preset: 'landscape' }), basic)
    expect(req).toEqual({
      prompt: 'a fox', negative_prompt: 'blurry', model: 'sdxl', width: 1024, height: 760,
      steps: 40, cfg_scale: 6.5, seed: 0, batch_size: 3,
    })
  })

  it('starts from an init picture at its own size, with the strength', () => {
    const init = { ref: 'upload-1', url: 'https://s3/x.png', width: 803, height: 601, label: 'x.png' }
    expect(presetsFor(free, { init })[0]).toMatchObject({ id: PICTURE, width: 800, height: 600 })
    expect(buildRequest(draft({ init, preset: PICTURE, strength: 0.4 }), free)).toMatchObject({
      init_image: 'upload-1', strength: 0.4, width: 800, height: 600,
    })
  })

  it('falls back to the first preset when the chosen one is not offered (the init picture was removed)', () => {
    expect(buildRequest(draft({ preset: PICTURE }), free)).toMatchObject({ width: 512, height: 512 })
  })

  it('sends nothing while the prompt is blank or a field is wrong', () => {
    expect(buildRequest(draft({ prompt: '  ' }), free)).toBeUndefined()
    expect(buildRequest(draft({ seed: '-1' }), free)).toBeUndefined()
  })
})

describe('checkDraft', () => {
  it('holds numbers to the plan’s limits', () => {
    const issues = checkDraft(draft({ steps: '151', seed: '4294967296', batch: '2', cfg: '31' }), free)
    expect(issues.map((i) => i.field).sort()).toEqual(['batch', 'cfg', 'seed', 'steps'])
    expect(issues.find((i) => i.field === 'batch')?.message).toBe('Images must be from 1 to 1.')
    expect(checkDraft(draft({ batch: '4' }), basic)).toEqual([])
  })

  it('refuses a seed that is not a whole number', () => {
    expect(checkDraft(draft({ seed: '1.5' }), free)).toEqual([{ field: 'seed', message: 'The seed must be a whole number.' }])
  })

  it('refuses text that is not a plainly written number, rather than reading it as blank or as another number', () => {
    const message = (d: Partial<Draft>) => checkDraft(draft(d), basic).map((i) => i.message)
    expect(message({ steps: '1e' })).toEqual(['Steps must be a whole number, in digits only.'])
    expect(message({ steps: '1e2' })).toEqual(['Steps must be a whole number, in digits only.'])
    expect(message({ seed: '--1' })).toEqual(['The seed must be a whole number, in digits only.'])
    expect(message({ batch: '0x2' })).toEqual(['Images must be a whole number, in digits only.'])
    expect(message({ cfg: '--1' })).toEqual(['Guidance must be a number, like 7 or 7.5.'])
    expect(message({ cfg: '7e0' })).toEqual(['Guidance must be a number, like 7 or 7.5.'])
    expect(buildRequest(draft({ steps: '1e' }), basic)).toBeUndefined()
  })

  it('takes plain numbers with spaces around them, and decimals for guidance', () => {
    expect(checkDraft(draft({ steps: ' 40 ', cfg: '.5e', seed: '7' }), basic).map((i) => i.field)).toEqual(['cfg'])
    expect(buildRequest(draft({ steps: ' 40 ', cfg: '7.5', seed: '007' }), basic)).toMatchObject({ steps: 40, cfg_scale: 7.5, seed: 7 })
    expect(checkDraft(draft({ steps: '-3' }), basic).map((i) => i.message)).toEqual(['Steps must be from 1 to 150.'])
  })

  it('says when no size of the model fits the plan’s GPUs', () => {
    const tooBig = { ...free, limits: { ...free.limits, max_square_side: 0 } }
    expect(checkDraft(draft({}), tooBig).map((i) => i.field)).toEqual(['preset'])
  })
})

describe('draftFrom', () => {
  it('takes an image’s settings, with its seed and size, as one image', () => {
    const d = draftFrom({ prompt: 'a fox', negative_prompt: 'fog', model: 'sdxl', width: 1024, height: 760, steps: 40, cfg_scale: 6.5, seed: 42, batch_size: 4 }, [free, basic])
    expect(d).toMatchObject({ prompt: 'a fox', negative: 'fog', family: 'sdxl', preset: 'landscape', steps: '40', cfg: '6.5', seed: '42', batch: '1' })
    expect(buildRequest(d, basic)).toMatchObject({ width: 1024, height: 760, seed: 42 })
  })

  it('offers a size that is no preset as it was', () => {
    const d = draftFrom({ prompt: 'a fox', model: 'sd-1.5', width: 800, height: 600, seed: 1 }, [free])
    expect(d.preset).toBe(CUSTOM)
    expect(buildRequest(d, free)).toMatchObject({ width: 800, height: 600 })
  })
})
