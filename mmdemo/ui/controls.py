"""The chat tab's side panel: task picker with its editable prompt, label sets, voice, model picker."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from mmdemo import presets
from mmdemo.chat import ChatService
from mmdemo.errors import UserError
from mmdemo.tasks import FIELDS, LABEL_SETS, TASKS
from mmdemo.views import model_name


@dataclass
class TaskControls:
    """The components that choose and shape a task."""

    task: gr.Dropdown
    prompt: gr.Textbox
    labels: gr.Textbox
    language: gr.Dropdown

    @property
    def inputs(self) -> list[gr.components.Component]:
        """The task, its prompt, then one component per task field (``tasks.FIELDS``) the page asks for."""
        return [self.task, self.prompt, self.labels, self.language]


def task_controls(t: gr.I18n) -> TaskControls:
    """Task dropdown, the prompt it sends (editable), labels for classification, target language."""
    task = gr.Dropdown([(x.label, x.key) for x in TASKS.values()], value="chat", label=t("task"), elem_id="task")
    prompt = gr.Textbox(label=t("task_prompt"), lines=3, visible=False, elem_id="task-prompt")
    labels = gr.Textbox(value=FIELDS["labels"].default, label=t("labels"), visible=False, elem_id="labels")
    label_set = gr.Radio(list(LABEL_SETS), value="Sentiment", label=t("label_set"), visible=False)
    language = gr.Dropdown(list(FIELDS["language"].choices), value=FIELDS["language"].default, label=t("language"),
                           visible=False)

    def pick(key: str) -> tuple[dict, dict, dict, dict]:
        chosen = TASKS[key]
        classify = "labels" in chosen.fields
        return (gr.Textbox(value=chosen.prompt, visible=bool(chosen.prompt)), gr.Textbox(visible=classify),
                gr.Radio(visible=classify), gr.Dropdown(visible="language" in chosen.fields))

    task.change(pick, [task], [prompt, labels, label_set, language], queue=False, api_visibility="undocumented")
    label_set.change(lambda name: LABEL_SETS[name], [label_set], [labels], queue=False,
                     api_visibility="undocumented")
    return TaskControls(task, prompt, labels, language)


def model_picker(service: ChatService, t: gr.I18n, timer: gr.Timer) -> None:
    """A dropdown of the chat presets (plus the running model when it is not one); picking one switches the
    model for everyone in the background, while the status line shows the loading progress."""
    current = service.models.engine.status().model
    choices = [(" · ".join(filter(None, (p.name, p.size.split(",")[0], p.licence, p.cpu_speed))), p.model_id)
               for p in presets.choices("chat")]
    if current not in {value for _, value in choices}:
        choices.insert(0, (model_name(service.models.engine.status()), current))
    picker = gr.Dropdown(choices, value=current, label=t("picker"), elem_id="model-picker")

    def switch(model_id: str) -> gr.Timer:
        try:
            service.models.switch(model_id)  # the new model loads in the background
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        return gr.Timer(active=True)

    picker.input(switch, [picker], [timer], api_visibility="undocumented", concurrency_id="switch")
