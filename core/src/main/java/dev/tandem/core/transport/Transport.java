package dev.tandem.core.transport;

import java.io.IOException;

/**
 * Makes connections between active and standby. The same code runs above TCP and the in-JVM transport.
 */
public interface Transport
{
    /**
     * Accepts connections on an endpoint.
     */
    interface Listener extends AutoCloseable
    {
        /**
         * @return a newly accepted connection, or null if none is waiting (non-blocking).
         * @throws IOException if the listener failed.
         */
        Connection accept() throws IOException;

        /**
         * @return the endpoint actually bound (e.g. with the port chosen by the system).
         */
        String endpoint();

        /**
         * Stops listening. Idempotent.
         */
        @Override
        void close();
    }

    /**
     * Connects to a listening endpoint, waiting at most the timeout.
     *
     * @param endpoint      where the standby listens ({@code host:port} for TCP, a name in-JVM).
     * @param timeoutMillis how long to wait.
     * @return the open connection.
     * @throws IOException naming the endpoint if it cannot be reached.
     */
    Connection connect(String endpoint, long timeoutMillis) throws IOException;

    /**
     * @param endpoint where to listen ({@code host:port}, port 0 picks one; a name in-JVM).
     * @return the listener.
     * @throws IOException if the endpoint cannot be bound.
     */
    Listener listen(String endpoint) throws IOException;

    /**
     * Checks, when a context launches, that this transport may carry the given VM: a transport that authenticates
     * (TLS) holds a certificate naming one VM identity, and a context for another VM is a configuration error.
     *
     * @param vmId the identity of the VM the context protects or stands by for.
     * @throws dev.tandem.core.ConfigurationException naming both identities when they differ.
     */
    default void checkCarries(final String vmId)
    {
    }
}
