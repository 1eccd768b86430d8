# The Airflow image docker-compose.yml runs: Airflow 3.3.2 on Python 3.11 plus this project, installed
# with the versions frozen in requirements.lock (the same set CI tests).
#
# Base: the *slim* variant of the official 3.3.2 image. The full apache/airflow:3.3.2-python3.11 ships
# ~90 providers whose caps (pandas < 3, older SQLAlchemy, numpy, pyarrow ...) clash with our lock, so
# installing the lock over it would leave an environment `pip check` rejects. Slim has Airflow core and
# a few common providers; we add the Celery provider, pinned to what resolves against the lock.
ARG AIRFLOW_BASE_IMAGE=apache/airflow:slim-3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

# /opt/crm holds the project: pipeline/settings.py finds sql/, expectations/ and config/ relative to
# the package, so it is installed editable from there rather than into site-packages.
# /srv/crm is CRM_HOME (the crm-lake volume); a new named volume takes this directory's owner.
USER root
RUN mkdir -p /opt/crm/pipeline /srv/crm \
    && chown -R airflow:0 /opt/crm /srv/crm \
    && chmod 0775 /srv/crm
USER airflow
WORKDIR /opt/crm

# Dependencies first, in their own layer: only requirements.lock or pyproject.toml changes rebuild it.
# apache-airflow==3.3.2 is listed so that pip can never move Airflow itself; it is also in the lock.
# The Celery pins were resolved with `pip install --dry-run -c requirements.lock apache-airflow-providers-celery`.
COPY --chown=airflow:0 requirements.lock pyproject.toml README.md /opt/crm/
RUN touch /opt/crm/pipeline/__init__.py \
    && pip install --no-cache-dir -c /opt/crm/requirements.lock \
        "apache-airflow==3.3.2" \
        -e /opt/crm \
        "apache-airflow-providers-celery==3.26.0" "celery==5.6.3" "kombu==5.7.0" "redis==8.1.0" \
        "flower==2.2.0" "billiard==4.3.2" "vine==5.1.0" "amqp==5.4.2" "tornado==6.6.1" \
        "click-didyoumean==0.3.1" "click-plugins==1.1.1.2" "click-repl==0.4.1" "humanize==4.17.0" \
        "prometheus-client==0.26.0" "prompt-toolkit==3.0.53" "wcwidth==0.9.4"

# The code. .dockerignore keeps out the venv, var/, tests, .git and any .env.
COPY --chown=airflow:0 . /opt/crm/
RUN pip check \
    && python -c "import pipeline.tasks, airflow.providers.celery; print('crm-pipeline image ok')"
