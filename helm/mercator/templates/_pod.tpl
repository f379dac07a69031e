{{/*
The pod template of the serving Deployment and of the stream consumers' StatefulSet:
the same image, configuration, secrets, probes and hardening. `root` is the chart's
context, `selector` the pods' selector labels, `configName` their ConfigMap, and
`streams` whether they consume Kafka (the StatefulSet: its own ConfigMap with
[streams], the Kafka secrets mounted, no PVC).
*/}}
{{- define "mercator.podTemplate" -}}
{{- $root := .root -}}
{{- $selector := .selector -}}
{{- $configName := .configName -}}
{{- $streams := .streams -}}
{{- with .root -}}
{{- $tls := include "mercator.tls" . -}}
{{- $s := .Values.storage }}
    metadata:
      annotations:
        # A changed configuration rolls the pods.
        checksum/config: {{ include (print $root.Template.BasePath (ternary "/streams-configmap.yaml" "/configmap.yaml" $streams)) . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- $selector | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "mercator.serviceAccountName" . }}
      automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      # The preStop pause, then the server's own drain, then a margin.
      terminationGracePeriodSeconds: {{ add .Values.shutdown.preStopSeconds .Values.shutdown.drainSeconds 10 }}
      containers:
        - name: mercator
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          # The image's entrypoint is `mercator serve`.
          args: ["--config", "/etc/mercator/config/mercator.toml"]
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          ports:
            - name: grpc
              containerPort: {{ .Values.service.grpcPort }}
              protocol: TCP
            - name: metrics
              containerPort: {{ .Values.service.metricsPort }}
              protocol: TCP
          env:
            # Each pod reports its own load and metrics under its own name.
            - name: MERCATOR_SERVER__INSTANCE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- with $s.registry.existingSecret }}
            - name: MERCATOR_REGISTRY__URL
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: {{ $s.registry.key }}
            {{- end }}
            {{- with $s.onlineStore.existingSecret }}
            - name: MERCATOR_FEATURES__ONLINE_STORE
              valueFrom:
                secretKeyRef:
                  name: {{ . }}
                  key: {{ $s.onlineStore.key }}
            {{- end }}
            {{- with .Values.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $s.credentialsSecret }}
          envFrom:
            - secretRef:
                name: {{ . }}
          {{- end }}
          {{- if and $tls .Values.tls.clientCA.existingSecret }}
          # mTLS: the kubelet has no client certificate, so the TCP port is probed.
          startupProbe:
            tcpSocket:
              port: grpc
            {{- toYaml .Values.probes.startup | nindent 12 }}
          livenessProbe:
            tcpSocket:
              port: grpc
            {{- toYaml .Values.probes.liveness | nindent 12 }}
          readinessProbe:
            tcpSocket:
              port: grpc
            {{- toYaml .Values.probes.readiness | nindent 12 }}
          {{- else if $tls }}
          # The kubelet's gRPC probes cannot speak TLS, its HTTP probes can: V2 health on
          # the HTTP listener (ready is 503 until the models load and once it drains).
          startupProbe:
            httpGet:
              path: /v2/health/ready
              port: metrics
              scheme: HTTPS
            {{- toYaml .Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /v2/health/live
              port: metrics
              scheme: HTTPS
            {{- toYaml .Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /v2/health/ready
              port: metrics
              scheme: HTTPS
            {{- toYaml .Values.probes.readiness | nindent 12 }}
          {{- else }}
          # grpc.health.v1 for the whole server (""): NOT_SERVING until its models are
          # loaded and once it starts draining.
          startupProbe:
            grpc:
              port: {{ .Values.service.grpcPort }}
            {{- toYaml .Values.probes.startup | nindent 12 }}
          livenessProbe:
            grpc:
              port: {{ .Values.service.grpcPort }}
            {{- toYaml .Values.probes.liveness | nindent 12 }}
          readinessProbe:
            grpc:
              port: {{ .Values.service.grpcPort }}
            {{- toYaml .Values.probes.readiness | nindent 12 }}
          {{- end }}
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ .Values.shutdown.preStopSeconds }}"]
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/mercator/config
              readOnly: true
            - name: data
              mountPath: /var/lib/mercator
            - name: tmp
              mountPath: /tmp
            {{- if .Values.auth.jwks.existingSecret }}
            - name: jwks
              mountPath: /etc/mercator/jwks
              readOnly: true
            {{- end }}
            {{- if $tls }}
            - name: tls
              mountPath: /etc/mercator/tls
              readOnly: true
            {{- end }}
            {{- if .Values.tls.clientCA.existingSecret }}
            - name: client-ca
              mountPath: /etc/mercator/client-ca
              readOnly: true
            {{- end }}
            {{- if and $streams .Values.streams.sasl.passwordSecret }}
            - name: kafka-sasl
              mountPath: /etc/mercator/kafka-sasl
              readOnly: true
            {{- end }}
            {{- if and $streams .Values.streams.tls.existingSecret }}
            - name: kafka-tls
              mountPath: /etc/mercator/kafka-tls
              readOnly: true
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ $configName }}
        - name: data
          {{- if and $s.persistence.enabled (not $streams) }}
          persistentVolumeClaim:
            claimName: {{ $s.persistence.existingClaim | default (include "mercator.fullname" .) }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: tmp
          emptyDir: {}
        {{- with .Values.auth.jwks.existingSecret }}
        - name: jwks
          secret:
            secretName: {{ . }}
        {{- end }}
        {{- if $tls }}
        - name: tls
          secret:
            secretName: {{ .Values.tls.existingSecret }}
        {{- end }}
        {{- with .Values.tls.clientCA.existingSecret }}
        - name: client-ca
          secret:
            secretName: {{ . }}
        {{- end }}
        {{- if $streams }}
        {{- with .Values.streams.sasl.passwordSecret }}
        - name: kafka-sasl
          secret:
            secretName: {{ . }}
        {{- end }}
        {{- with .Values.streams.tls.existingSecret }}
        - name: kafka-tls
          secret:
            secretName: {{ . }}
        {{- end }}
        {{- end }}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
        - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- $selector | nindent 14 }}
        {{- end }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
{{- end -}}
