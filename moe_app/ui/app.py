"""`build_app(pipeline) -> gr.Blocks`: layout first, event wiring last.

Tabs: New case (inputs, result, explanations, what-if, export, feedback), Audit, About the model.
The diagnosis is shown by the first event; heatmaps and attributions fill in by a `.then()`.
"""

from __future__ import annotations

import gradio as gr

from moe_app.labels import SEX_VALUES, VITALS
from moe_app.pipeline import Pipeline
from moe_app.ui import events
from moe_app.ui.handlers import UNKNOWN_SEX, Session, label_choices
from moe_app.ui.views import AUDIT_HEADERS, NOT_FOR_CLINICAL_USE, vitals_label

CSS = """
.diagnosis h2 {margin-top: 0}
.notice {border-left: 4px solid #b45309; padding-left: .6em}
"""


def build_app(pipeline: Pipeline, *, demo_mode: bool) -> gr.Blocks:
    """The whole workstation. `demo_mode` only changes the banner; login is decided at launch."""
    ev = events.Events(pipeline)
    experts = ev.expert_names()
    samples = ev.sample_names()

    with gr.Blocks(title="MoE diagnostic workstation", analytics_enabled=False, delete_cache=(300, 900)) as app:
        session = gr.State(Session())
        mode = "Local demo mode (no login; audited as `local-demo`)" if demo_mode else "Signed-in mode"
        gr.Markdown(f"# Multimodal MoE diagnostic workstation\n{NOT_FOR_CLINICAL_USE}  \n_{mode}_", elem_classes="notice")

        with gr.Tab("New case", id="case"):
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    with gr.Group():
                        sample = gr.Dropdown(choices=samples, value=None, label="Sample case", info="Fills the form with a bundled synthetic case")
                    files = gr.File(label="DICOM files or a .zip", file_count="multiple", type="filepath")
                    report = gr.Textbox(label="Report (free text)", lines=6, max_lines=20, placeholder="Type or paste the report, or upload a .txt")
                    report_file = gr.File(label="…or upload report.txt", file_count="single", type="filepath", file_types=[".txt"])
                    with gr.Accordion("Vitals and labs (leave empty if not measured)", open=True):
                        vitals = [gr.Number(label=vitals_label(i), value=None, elem_id=f"vital-{spec.key}") for i, spec in enumerate(VITALS)]
                        sex = gr.Radio([*SEX_VALUES, UNKNOWN_SEX], value=UNKNOWN_SEX, label="Sex")
                    with gr.Row():
                        run = gr.Button("Run", variant="primary", elem_id="run-button")
                        clear = gr.Button("Clear")
                with gr.Column(scale=2):
                    diagnosis = gr.Markdown("Load a sample case or upload one, then press **Run**.", elem_id="diagnosis", elem_classes="diagnosis")
                    runtime_info = gr.Markdown(elem_id="runtime-info")
                    # One chart per row: each needs the width for its labels and legend.
                    prob_plot = gr.Plot(label="Diagnosis probabilities", elem_id="prob-plot")
                    gate_plot = gr.Plot(label="Gate weights per expert", elem_id="gate-plot")
                    contrib_plot = gr.Plot(label="How the experts' votes add up", elem_id="contrib-plot")
                    opinions_plot = gr.Plot(label="Expert opinions", elem_id="opinions-plot")
                    contrib_label = gr.Dropdown(label_choices(), value=None, label="Show contributions for")
                    summary = gr.Markdown(elem_id="summary")
                    warnings = gr.Markdown(elem_id="case-warnings")

            with gr.Row():
                with gr.Column(scale=1):
                    image = gr.Image(label="Image (de-identified)", type="numpy", interactive=False, format="png", elem_id="viewer")
                    with gr.Row():
                        window = gr.Radio(["default", "lung", "mediastinum", "bone"], value="default", label="Window")
                        frame = gr.Slider(0, 1, value=0, step=1, label="Frame / slice", interactive=False)
                    with gr.Row():
                        overlay = gr.Dropdown(["none"], value="none", label="Heatmap of image expert")
                        opacity = gr.Slider(0.0, 1.0, value=0.45, step=0.05, label="Heatmap opacity")
                with gr.Column(scale=1):
                    highlights = gr.HighlightedText(label="Report: words that pushed towards (+) or away from (−) the diagnosis", elem_id="report-highlights")
                    vitals_plot = gr.Plot(label="Vitals and labs: contribution of each value")
                    vitals_table = gr.Dataframe(headers=["field", "value", "reference", "attribution"], interactive=False, label="Vitals and labs")

            with gr.Accordion("What if an expert or a modality were removed?", open=False):
                with gr.Row():
                    remove_experts = gr.CheckboxGroup(experts, label="Remove experts")
                    remove_modalities = gr.CheckboxGroup(["image", "report", "vitals"], label="Remove modalities")
                    opinion_of = gr.Dropdown(experts, value=None, label="Opinion of an unused expert (not used in the result)")
                whatif_run = gr.Button("Re-run without them")
                whatif_plot = gr.Plot(label="Before and after")
                whatif_text = gr.Markdown()

            with gr.Accordion("De-identified DICOM header", open=False):
                header = gr.Dataframe(headers=["attribute", "value"], interactive=False)

            with gr.Row():
                with gr.Column():
                    gr.Markdown("### Export")
                    with gr.Row():
                        fhir_btn = gr.Button("FHIR DiagnosticReport")
                        print_btn = gr.Button("Printable report")
                    export_file = gr.File(label="Download", interactive=False)
                with gr.Column():
                    gr.Markdown("### Your assessment")
                    verdict = gr.Radio(["agree", "disagree"], label="Do you agree with the model?", elem_id="feedback-verdict")
                    corrected = gr.Dropdown(label_choices(), value=None, label="Correct diagnosis (if you disagree)")
                    comment = gr.Textbox(label="Comment (no patient identifiers)", lines=2)
                    feedback_btn = gr.Button("Save feedback", elem_id="feedback-button")
                    feedback_msg = gr.Markdown(elem_id="feedback-msg")

        with gr.Tab("Audit", id="audit"):
            with gr.Row():
                q_text = gr.Textbox(label="Search (pseudonym, user, diagnosis)", scale=2)
                q_action = gr.Dropdown(["", "case.submitted", "case.rejected", "prediction.made", "prediction.failed", "feedback.recorded", "login.failed", "audit.exported", "audit.verified", "audit.viewed"], value="", label="Action")
                q_user = gr.Textbox(label="User")
                q_since = gr.Textbox(label="From (YYYY-MM-DD, UTC)")
                q_until = gr.Textbox(label="Until (YYYY-MM-DD, inclusive)")
                q_btn = gr.Button("Search", elem_id="audit-search")
            audit_table = gr.Dataframe(headers=AUDIT_HEADERS, interactive=False, elem_id="audit-table", wrap=True)
            with gr.Row():
                detail_id = gr.Number(label="Event id", precision=0)
                detail_btn = gr.Button("Show event")
            with gr.Row():
                detail_gate = gr.Plot(label="Stored gate weights")
                detail_contrib = gr.Plot(label="Stored contributions")
            detail_json = gr.JSON(label="Stored event (no patient data)")
            with gr.Row():
                verify_btn = gr.Button("Verify chain", elem_id="verify-button")
                export_fhir = gr.Button("Export FHIR AuditEvents")
                export_csv = gr.Button("Export CSV")
            verify_msg = gr.Markdown(elem_id="verify-msg")
            audit_file = gr.File(label="Download", interactive=False)

        with gr.Tab("About the model", id="about"):
            gr.Markdown(ev.about_markdown())
            gr.Dataframe(value=ev.expert_rows(), headers=["expert", "modality", "parameters", "description"], interactive=False)

        # ---- wiring -------------------------------------------------------------------
        result_outputs = [session, diagnosis, runtime_info, prob_plot, gate_plot, contrib_plot, opinions_plot, summary, warnings, image, frame, overlay, header, contrib_label]
        explain_outputs = [session, image, highlights, vitals_plot, vitals_table, summary, overlay]
        sample.change(ev.load_sample, [sample], [report, *vitals, sex, files], api_visibility="private")
        run.click(ev.run_form, [session, sample, files, report, report_file, sex, *vitals], result_outputs, api_visibility="private", concurrency_limit=pipeline.config.server.concurrency_limit, concurrency_id="model").then(
            ev.explain, [session, window, frame, overlay, opacity], explain_outputs, api_visibility="private", concurrency_id="model"
        )
        clear.click(ev.clear_form, None, [session, sample, files, report, report_file, *vitals, sex, diagnosis], api_visibility="private")
        for ctl in (window, frame, overlay, opacity):
            ctl.change(ev.render_image, [session, window, frame, overlay, opacity], [image], api_visibility="private", show_progress="hidden")
        contrib_label.change(ev.contributions_for, [session, contrib_label], [contrib_plot], api_visibility="private")
        whatif_run.click(ev.what_if, [session, remove_experts, remove_modalities, opinion_of], [whatif_plot, whatif_text, opinions_plot], api_visibility="private", concurrency_id="model")
        fhir_btn.click(ev.export_fhir, [session], [export_file], api_visibility="private")
        print_btn.click(ev.export_printable, [session], [export_file], api_visibility="private")
        feedback_btn.click(ev.feedback, [session, verdict, corrected, comment], [feedback_msg], api_visibility="private")
        q_btn.click(ev.search_audit, [q_text, q_action, q_user, q_since, q_until], [audit_table], api_visibility="private")
        detail_btn.click(ev.audit_detail, [detail_id], [detail_json, detail_gate, detail_contrib], api_visibility="private")
        verify_btn.click(ev.verify_chain, None, [verify_msg], api_visibility="private")
        export_fhir.click(ev.export_audit_fhir, None, [audit_file], api_visibility="private")
        export_csv.click(ev.export_audit_csv, None, [audit_file], api_visibility="private")

        # The programmatic endpoint (same JSON as `moe-app predict --json`), on hidden components
        # so that gradio_client's file upload and clean-up work as for any event.
        with gr.Row(visible=False):
            api_files = gr.File(file_count="multiple", type="filepath", label="DICOM files")
            api_report = gr.Textbox(label="report text")
            api_vitals = gr.Textbox(label="vitals JSON")
            api_out = gr.JSON(label="prediction")
            api_btn = gr.Button("predict")
        api_btn.click(
            ev.predict_case, [api_files, api_report, api_vitals], [api_out], api_name="predict_case",
            api_description="DICOM files, report text and a vitals JSON string -> the `moe-app predict --json` object",
            concurrency_limit=pipeline.config.server.concurrency_limit, concurrency_id="model",
        )
    return app
