# mmdemo on a GPU host:  docker build -t mmdemo .
#   docker run --gpus all -p 7860:7860 -v hf-cache:/data/hf mmdemo
# The torch wheel from PyPI brings its own CUDA libraries; the base image adds the CUDA runtime
# userland, and the host needs the NVIDIA driver and container toolkit.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --create-home --uid 1000 mmdemo

ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    HF_HOME=/data/hf GRADIO_ANALYTICS_ENABLED=False GRADIO_SERVER_NAME=0.0.0.0 PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/venv
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt
COPY --chown=mmdemo app.py /app/
COPY --chown=mmdemo mmdemo /app/mmdemo
COPY --chown=mmdemo assets /app/assets

RUN mkdir -p /data/hf && chown mmdemo /data/hf
VOLUME /data/hf
USER mmdemo
WORKDIR /app
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s CMD python3 -c \
  "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/health')"
CMD ["python3", "app.py"]
