package invokeai

import (
	"slices"
	"strings"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/invokeai/graphcheck"
)

// Node ids of the image-to-image and inpainting additions.
const (
	nodeEncode   = "i2l"
	nodeMask     = "gradient_mask"
	nodeMaskFade = "mask_fade"
	nodePaste    = "paste_back"
)

// Inpainting's soft edge, in pixels, as InvokeAI's canvas defaults: the
// gradient mask eases denoising in over edgeRadius around the masked area
// (create_gradient_mask, "Gaussian Blur"), and the paste-back fades the
// result into the init image over fadeSize (expand_mask_with_fade).
const (
	edgeRadius = 16
	fadeSize   = 16
)

// addSources turns a text-to-image graph into image-to-image, as
// InvokeAI's own canvas graphs do (addImageToImage.ts, addInpaint.ts in its
// web app): the init image is encoded (i2l, or flux_vae_encode) into the
// latents the denoise node starts from at denoising_start = 1 - strength
// (the noise is added for that point of the schedule). With a mask,
// create_gradient_mask turns it into the denoise node's denoise_mask
// (InvokeAI's masks keep white and repaint black: the engine uploaded it
// inverted), and the decoded picture is pasted back onto the init image
// through the mask's expanded area (expand_mask_with_fade ->
// invokeai_img_blend), so that unmasked pixels come back unchanged instead
// of through the VAE. It returns the node whose image is the result.
func addSources(g *graph, req engine.Request, src sources) string {
	flux := req.Model == catalog.ModelFlux
	image := map[string]any{"image_name": src.init}
	denoise := g.Nodes[nodeDenoise]
	denoise["denoising_start"] = 1 - req.Strength
	if flux {
		g.node(nodeEncode, "flux_vae_encode", map[string]any{"image": image})
	} else {
		g.node(nodeEncode, "i2l", map[string]any{"image": image, "fp32": g.Nodes[nodeOutput]["fp32"]})
	}
	g.link(nodeLoader, "vae", nodeEncode, "vae")
	g.link(nodeEncode, "latents", nodeDenoise, "latents")
	md := g.Nodes[nodeMetadata]
	md["strength"], md["init_image"] = req.Strength, src.init
	mode, id := "img2img", "_i2i_"
	if src.mask != "" {
		mode, id = "inpaint", "_inpaint_"
	}
	md["generation_mode"] = strings.Replace(md["generation_mode"].(string), "txt2img", mode, 1)
	g.ID = strings.Replace(g.ID, "_t2i_", id, 1)
	if src.mask == "" {
		return nodeOutput
	}
	mask := map[string]any{"mask": map[string]any{"image_name": src.mask}, "image": image,
		"edge_radius": edgeRadius, "coherence_mode": "Gaussian Blur", "minimum_denoise": 0.0,
		"is_intermediate": true}
	if !flux {
		mask["fp32"] = g.Nodes[nodeOutput]["fp32"]
	}
	g.node(nodeMask, "create_gradient_mask", mask)
	g.link(nodeLoader, "vae", nodeMask, "vae")
	if !flux { // inpainting-variant UNets also get the masked image's latents
		g.link(nodeLoader, "unet", nodeMask, "unet")
	}
	g.link(nodeMask, "denoise_mask", nodeDenoise, "denoise_mask")
	g.node(nodeMaskFade, "expand_mask_with_fade", map[string]any{"fade_size_px": fadeSize, "is_intermediate": true})
	g.link(nodeMask, "expanded_mask_area", nodeMaskFade, "mask")
	g.node(nodePaste, "invokeai_img_blend", map[string]any{"layer_base": image, "is_intermediate": false})
	g.link(nodeOutput, "image", nodePaste, "layer_upper")
	g.link(nodeMaskFade, "image", nodePaste, "mask")
	// The decoded picture is an intermediate now; the metadata goes on the
	// picture that is kept.
	g.Nodes[nodeOutput]["is_intermediate"] = true
	g.Edges = slices.DeleteFunc(g.Edges, func(e graphcheck.Edge) bool {
		return e.Source.NodeID == nodeMetadata && e.Destination.NodeID == nodeOutput
	})
	g.link(nodeMetadata, "metadata", nodePaste, "metadata")
	return nodePaste
}
